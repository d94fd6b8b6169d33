//! VoIP (spec: Client-Server API › Voice over IP). No TURN server is configured, which the spec
//! expresses as an empty URI list.

use std::time::Duration;

use hearth_core::Homeserver;
use ruma::api::client::voip::get_turn_server_info;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/voip/turnServer`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3voipturnserver>
pub async fn turn_server(
    _hs: Homeserver,
    _req: Ruma<get_turn_server_info::v3::Request>,
) -> Result<get_turn_server_info::v3::Response> {
    Ok(get_turn_server_info::v3::Response::new(
        String::new(),
        String::new(),
        Vec::new(),
        Duration::from_secs(86_400),
    ))
}
