//! Device management (spec: Client-Server API › Device management).

use hearth_core::{
    Homeserver,
    accounts::{devices, uia},
    storage::devices::DeviceRow,
};
use ruma::{
    DeviceId, MilliSecondsSinceUnixEpoch, UInt,
    api::client::device::{Device, delete_device, delete_devices, get_device, get_devices, update_device},
};

use crate::{error::Result, ruma_wrapper::Ruma};

fn to_device(row: DeviceRow) -> Device {
    let mut device = Device::new(row.device_id);
    device.display_name = row.display_name;
    device.last_seen_ip = row.last_seen_ip;
    device.last_seen_ts =
        row.last_seen_ts.and_then(|ts| UInt::try_from(ts).ok()).map(MilliSecondsSinceUnixEpoch);
    device
}

/// `GET /_matrix/client/v3/devices`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3devices>
pub async fn list(hs: Homeserver, req: Ruma<get_devices::v3::Request>) -> Result<get_devices::v3::Response> {
    let rows = devices::list(&hs, &req.auth.user_id).await?;
    Ok(get_devices::v3::Response::new(rows.into_iter().map(to_device).collect()))
}

/// `GET /_matrix/client/v3/devices/{deviceId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3devicesdeviceid>
pub async fn get(hs: Homeserver, req: Ruma<get_device::v3::Request>) -> Result<get_device::v3::Response> {
    let row = devices::get(&hs, &req.auth.user_id, &req.body.device_id).await?;
    Ok(get_device::v3::Response::new(to_device(row)))
}

/// `PUT /_matrix/client/v3/devices/{deviceId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3devicesdeviceid>
pub async fn update(
    hs: Homeserver,
    req: Ruma<update_device::v3::Request>,
) -> Result<update_device::v3::Response> {
    let body = req.body;
    devices::rename(&hs, &req.auth.user_id, &body.device_id, body.display_name.as_deref()).await?;
    Ok(update_device::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/devices/{deviceId}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3devicesdeviceid>
pub async fn delete(
    hs: Homeserver,
    req: Ruma<delete_device::v3::Request>,
) -> Result<delete_device::v3::Response> {
    let (body, user) = (req.body, req.auth);
    uia::check(&hs, body.auth.as_ref(), &uia::password_flows(), Some(&user.user_id)).await?;
    devices::delete(&hs, &user.user_id, &[&body.device_id]).await?;
    Ok(delete_device::v3::Response::new())
}

/// `POST /_matrix/client/v3/delete_devices`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3delete_devices>
pub async fn delete_many(
    hs: Homeserver,
    req: Ruma<delete_devices::v3::Request>,
) -> Result<delete_devices::v3::Response> {
    let (body, user) = (req.body, req.auth);
    uia::check(&hs, body.auth.as_ref(), &uia::password_flows(), Some(&user.user_id)).await?;
    let ids: Vec<&DeviceId> = body.devices.iter().map(|d| d.as_ref()).collect();
    devices::delete(&hs, &user.user_id, &ids).await?;
    Ok(delete_devices::v3::Response::new())
}
