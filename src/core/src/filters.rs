//! Sync filters (spec: Client-Server API › Filtering): stored per user, referenced by ID.

use rand::{Rng, distributions::Alphanumeric};
use ruma::{UserId, api::client::filter::FilterDefinition};

use crate::{Error, Homeserver, Result, storage::filters};

/// Stores a filter and returns its new ID.
pub async fn create(hs: &Homeserver, user_id: &UserId, filter: &FilterDefinition) -> Result<String> {
    let json = serde_json::to_string(filter).map_err(|e| Error::Internal(e.into()))?;
    let id: String = rand::thread_rng().sample_iter(&Alphanumeric).take(10).map(char::from).collect();
    filters::insert(hs.db().pool(), user_id, &id, &json).await?;
    Ok(id)
}

/// Loads a filter, or 404.
pub async fn get(hs: &Homeserver, user_id: &UserId, filter_id: &str) -> Result<FilterDefinition> {
    let json = filters::get(hs.db().pool(), user_id, filter_id)
        .await?
        .ok_or_else(|| Error::not_found("No such filter"))?;
    serde_json::from_str(&json).map_err(|e| Error::Internal(anyhow::Error::new(e).context("stored filter")))
}
