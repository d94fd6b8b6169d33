//! Send-to-device messaging (spec: Client-Server API › Send-to-Device messaging).

use hearth_core::{Homeserver, to_device};
use ruma::api::client::to_device::send_event_to_device;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3sendtodeviceeventtypetxnid>
pub async fn send(
    hs: Homeserver,
    req: Ruma<send_event_to_device::v3::Request>,
) -> Result<send_event_to_device::v3::Response> {
    let (user, body) = (req.auth, req.body);
    let kind = body.event_type.to_string();
    to_device::send(&hs, &user.user_id, &user.device_id, &kind, body.txn_id.as_str(), &body.messages).await?;
    Ok(send_event_to_device::v3::Response::new())
}
