//! Syncing (spec: Client-Server API › Syncing).

use axum::{Json, response::Response};
use hearth_core::{
    Error, Homeserver,
    accounts::User,
    config::DeliveryReceipts,
    delivery,
    filters::{self, SyncFilter},
    sync::{self, SyncRequest, SyncToken},
};
use ruma::{UserId, api::client::sync::sync_events::v3};
use serde_json::Value;

use crate::{
    defer::{self, Deferrable},
    error::Result,
    ruma_wrapper::Ruma,
};

/// `GET /_matrix/client/v3/sync`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3sync>
///
/// Answered as raw JSON: ruma's response type leaves out empty sections that clients look for.
/// A long-poll that has to wait hands its wait to the connection where it can ([`defer`]).
///
/// A plain function: the request (its filter alone is ~1 KB) is boxed before the future is
/// made, because an async function keeps its arguments, and copies of what it moves, for as
/// long as it lives, and this one lives as long as a long-poll waits.
pub fn sync_events(
    hs: Homeserver,
    Deferrable(req, can_defer): Deferrable<Ruma<v3::Request>>,
) -> impl Future<Output = Result<Response>> + Send + 'static {
    let answer = defer::or_later(can_defer, answer(hs, req.auth, Box::new(req.body)));
    async move { Ok(answer.await) }
}

async fn answer(hs: Homeserver, auth: User, mut body: Box<v3::Request>) -> Result<Json<Value>> {
    let (user, device) = (&auth.user_id, &auth.device_id);
    let since = body.since.take();
    let request = {
        // Boxed, like every step of a sync but the wait (see `sync::sync`).
        let filter = Box::pin(requested_filter(&hs, user, body.filter.take())).await?;
        Box::new(SyncRequest {
            user,
            device,
            since: since.as_deref().map(SyncToken::parse).transpose()?,
            filter,
            full_state: body.full_state,
            set_presence: Some(body.set_presence.clone()),
            timeout: body.timeout.unwrap_or_default(),
        })
    };
    // What is left of the request is not kept while the sync waits.
    drop(body);
    let record_delivery = hs.config().delivery.receipts == DeliveryReceipts::All;
    if let (true, Some(since)) = (record_delivery, since.as_deref()) {
        // This request acknowledges the response that ended at `since`.
        let acknowledged = hs.sync_deliveries().acknowledged(user, device.clone(), since);
        Box::pin(delivery::record(&hs, user, &acknowledged)).await?;
    }
    let response = sync::sync(&hs, &request).await?;
    if record_delivery && let Some(next_batch) = response["next_batch"].as_str() {
        hs.sync_deliveries().sent(user, device.clone(), next_batch, delivery::carried(user, &response));
    }
    Ok(Json(response))
}

/// The filter a sync asks for: given inline, by ID, or none.
async fn requested_filter(hs: &Homeserver, user: &UserId, filter: Option<v3::Filter>) -> Result<SyncFilter> {
    Ok(match filter {
        None => SyncFilter::default(),
        Some(v3::Filter::FilterDefinition(filter)) => SyncFilter::inline(&filter)?,
        // ruma falls back to an ID when the JSON does not parse as a filter.
        Some(v3::Filter::FilterId(id)) if id.trim_start().starts_with('{') => {
            return Err(Error::bad_json("The filter is not a valid filter definition").into());
        }
        Some(v3::Filter::FilterId(id)) => filters::stored(hs, user, &id).await?,
        Some(_) => return Err(Error::invalid_param("Unsupported filter").into()),
    })
}
