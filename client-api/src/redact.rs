//! Redactions (spec: Client-Server API › Redactions).

use hearth_core::{Homeserver, rooms::redaction};
use ruma::api::client::redact::redact_event;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid>
///
/// Idempotent per device like `/send`. Redacting another user's event without the `redact`
/// power level is 403, as Synapse answers (the auth rules alone would let it through).
pub async fn redact(
    hs: Homeserver,
    req: Ruma<redact_event::v3::Request>,
) -> Result<redact_event::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let event_id = redaction::redact(
        &hs,
        &user.user_id,
        &user.device_id,
        &body.room_id,
        &body.event_id,
        body.txn_id.as_str(),
        body.reason.as_deref(),
    )
    .await?;
    Ok(redact_event::v3::Response::new(event_id))
}
