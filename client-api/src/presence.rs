//! Presence (spec: Client-Server API › Presence).

use hearth_core::{Homeserver, presence};
use ruma::api::client::presence::{get_presence, set_presence};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/presence/{userId}/status`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3presenceuseridstatus>
pub async fn get(hs: Homeserver, req: Ruma<get_presence::v3::Request>) -> Result<get_presence::v3::Response> {
    let seen = presence::get(&hs, &req.auth.user_id, &req.body.user_id).await?;
    let mut response = get_presence::v3::Response::new(seen.state);
    response.status_msg = seen.status_msg;
    response.last_active_ago = seen.last_active_ago;
    response.currently_active = seen.currently_active;
    Ok(response)
}

/// `PUT /_matrix/client/v3/presence/{userId}/status`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3presenceuseridstatus>
pub async fn set(hs: Homeserver, req: Ruma<set_presence::v3::Request>) -> Result<set_presence::v3::Response> {
    let body = req.body;
    presence::set(&hs, &req.auth.user_id, &body.user_id, &body.presence, body.status_msg.as_deref()).await?;
    Ok(set_presence::v3::Response::new())
}
