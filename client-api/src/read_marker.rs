//! Read markers (spec: Client-Server API › Read and unread markers).

use hearth_core::{Homeserver, account_data};
use ruma::api::client::read_marker::set_read_marker;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/rooms/{roomId}/read_markers`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidread_markers>
///
/// Moves the fully read marker. The `m.read` and `m.read.private` receipts it may carry are
/// accepted but not stored yet: read receipts arrive with `/sync` (issue 4).
pub async fn set(
    hs: Homeserver,
    req: Ruma<set_read_marker::v3::Request>,
) -> Result<set_read_marker::v3::Response> {
    let body = req.body;
    account_data::set_read_markers(&hs, &req.auth.user_id, &body.room_id, body.fully_read.as_deref()).await?;
    Ok(set_read_marker::v3::Response::new())
}
