//! Receipts (spec: Client-Server API › Receipts).

use hearth_core::{Homeserver, receipts};
use ruma::api::client::receipt::create_receipt;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_receipt::v3::Request>,
) -> Result<create_receipt::v3::Response> {
    let body = req.body;
    receipts::create(&hs, &req.auth.user_id, &body.room_id, &body.receipt_type, &body.event_id, &body.thread)
        .await?;
    Ok(create_receipt::v3::Response::new())
}
