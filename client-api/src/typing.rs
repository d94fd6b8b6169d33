//! Typing notifications (spec: Client-Server API › Typing Notifications).

use hearth_core::{Homeserver, typing};
use ruma::api::client::typing::create_typing_event::{self, v3::Typing};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidtypinguserid>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_typing_event::v3::Request>,
) -> Result<create_typing_event::v3::Response> {
    let body = req.body;
    let timeout = match body.state {
        Typing::Yes(info) => Some(info.timeout),
        Typing::No => None,
    };
    typing::set(&hs, &req.auth.user_id, &body.user_id, &body.room_id, timeout).await?;
    Ok(create_typing_event::v3::Response::new())
}
