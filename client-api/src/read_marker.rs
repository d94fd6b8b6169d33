//! Read markers (spec: Client-Server API › Read and unread markers).

use hearth_core::{Homeserver, receipts};
use ruma::api::client::read_marker::set_read_marker;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/rooms/{roomId}/read_markers`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidread_markers>
///
/// Moves the fully read marker and sets the `m.read` and `m.read.private` receipts it carries,
/// as the receipt endpoint would.
pub async fn set(
    hs: Homeserver,
    req: Ruma<set_read_marker::v3::Request>,
) -> Result<set_read_marker::v3::Response> {
    let body = req.body;
    receipts::set_read_markers(
        &hs,
        &req.auth.user_id,
        &body.room_id,
        body.fully_read.as_deref(),
        body.read_receipt.as_deref(),
        body.private_read_receipt.as_deref(),
    )
    .await?;
    Ok(set_read_marker::v3::Response::new())
}
