//! Sync filters (spec: Client-Server API › Filtering): stored per user, referenced by ID.
//! A stored filter never changes, so every `/sync` naming one is answered from a small cache.

use rand::{Rng, distributions::Alphanumeric};
use std::sync::Mutex;

use lru::LruCache;
use ruma::{OwnedUserId, UserId, api::client::filter::FilterDefinition};

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
    let key = (user_id.to_owned(), filter_id.to_owned());
    if let Some(filter) = locked(hs.filter_cache()).get(&key) {
        return Ok(filter.clone());
    }
    let json = filters::get(hs.db().pool(), user_id, filter_id)
        .await?
        .ok_or_else(|| Error::not_found("No such filter"))?;
    let filter: FilterDefinition = serde_json::from_str(&json)
        .map_err(|e| Error::Internal(anyhow::Error::new(e).context("stored filter")))?;
    locked(hs.filter_cache()).put(key, filter.clone());
    Ok(filter)
}

/// Recently used filters by `(owner, filter ID)`.
pub type FilterCache = Mutex<LruCache<(OwnedUserId, String), FilterDefinition>>;

/// An empty filter cache.
pub fn new_cache() -> FilterCache {
    Mutex::new(LruCache::new(CACHED.try_into().expect("non-zero")))
}

/// How many filters the cache keeps.
const CACHED: usize = 4_096;

fn locked(
    cache: &FilterCache,
) -> std::sync::MutexGuard<'_, LruCache<(OwnedUserId, String), FilterDefinition>> {
    // Held for one map operation, never across an await.
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
