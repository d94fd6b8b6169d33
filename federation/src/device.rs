//! Device lists across servers (spec: Server-Server API › Device Management).

use std::collections::BTreeMap;

use hearth_core::{
    Error,
    e2ee::{device_lists, keys},
};
use ruma::{UInt, api::federation::device::get_devices::v1 as get_devices, encryption::DeviceKeys};

use crate::{FedResult, FedRuma, Federation};

/// `GET /_matrix/federation/v1/user/devices/{userId}`: a local user's devices with their identity
/// keys and display names, and their cross-signing keys; `stream_id` is the position of the
/// user's latest device-list change, which the next `m.device_list_update` names in `prev_id`.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1userdevicesuserid>
pub async fn get_devices(
    fed: Federation,
    req: FedRuma<get_devices::Request>,
) -> FedResult<get_devices::Response> {
    let user_id = req.body.user_id;
    if user_id.server_name() != fed.hs().server_name() {
        return Err(Error::not_found("The user is not a user of this server").into());
    }
    let stream_id =
        UInt::try_from(device_lists::latest_position(fed.hs(), &user_id).await?).unwrap_or_default();
    let mut queried = keys::query(fed.hs(), None, &BTreeMap::from([(user_id.clone(), Vec::new())])).await?;
    let mut response = get_devices::Response::new(user_id.clone(), stream_id);
    for (device_id, keys) in queried.device_keys.remove(&user_id).unwrap_or_default() {
        let display_name = keys.deserialize().ok().and_then(|k: DeviceKeys| k.unsigned.device_display_name);
        let mut device = get_devices::UserDevice::new(device_id, keys);
        device.device_display_name = display_name;
        response.devices.push(device);
    }
    response.master_key = queried.master_keys.remove(&user_id);
    response.self_signing_key = queried.self_signing_keys.remove(&user_id);
    Ok(response)
}
