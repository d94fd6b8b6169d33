//! Push rules (spec: Client-Server API › Push Rules). Until rules can be edited, every user has
//! the server-default rule set.

use hearth_core::Homeserver;
use ruma::{api::client::push::get_pushrules_all, push::Ruleset};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/pushrules/`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3pushrules>
pub async fn get_all(
    _hs: Homeserver,
    req: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    Ok(get_pushrules_all::v3::Response::new(Ruleset::server_default(&req.auth.user_id)))
}
