//! Server-side key backup (spec: Client-Server API › Server-side key backups).

use hearth_core::{Error, Homeserver};
use ruma::api::client::backup::get_latest_backup_info;

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/room_keys/version`: 404 `M_NOT_FOUND` while no backup exists.
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keysversion>
pub async fn latest_version(
    _hs: Homeserver,
    _req: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<get_latest_backup_info::v3::Response> {
    Err(Error::not_found("No current backup version").into())
}
