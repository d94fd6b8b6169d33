//! Pushers (spec: Client-Server API › Push Notifications › Client behaviour).

use hearth_core::{Homeserver, push::pushers};
use ruma::api::client::push::{get_pushers, set_pusher};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/pushers`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushers>
pub async fn get(hs: Homeserver, req: Ruma<get_pushers::v3::Request>) -> Result<get_pushers::v3::Response> {
    Ok(get_pushers::v3::Response::new(pushers::list(&hs, &req.auth.user_id).await?))
}

/// `POST /_matrix/client/v3/pushers/set`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3pushersset>
pub async fn set(hs: Homeserver, req: Ruma<set_pusher::v3::Request>) -> Result<set_pusher::v3::Response> {
    pushers::set(&hs, &req.auth.user_id, req.body.action).await?;
    Ok(set_pusher::v3::Response::new())
}
