//! The EDUs that tell other servers a local user's device list changed (spec: Server-Server API
//! › Device Management › `m.device_list_update`; End-to-End Encryption ›
//! `m.signing_key_update`), built in the transaction of the change from what it wrote, and
//! queued in the federation outbox for the servers sharing a room with the user
//! ([`super::device_lists::record_change`] decides when).

use ruma::{
    OwnedServerName, UInt, UserId,
    api::federation::transactions::edu::{DeviceListUpdateContent, Edu, SigningKeyUpdateContent},
};

use super::{device_lists::DeviceUpdate, keys};
use crate::{
    Result,
    rooms::outbound,
    storage::{WriteTx, devices},
};

/// Queues an `m.device_list_update` per update for `servers`: the device's identity keys (as
/// another server's `/user/keys/query` sees them) and display name, or `deleted` when the
/// device is gone.
pub(crate) async fn queue_devices(
    tx: &mut WriteTx,
    servers: &[OwnedServerName],
    user_id: &UserId,
    updates: &[DeviceUpdate<'_>],
) -> Result<()> {
    if servers.is_empty() || updates.is_empty() {
        return Ok(());
    }
    let mut keys = keys::keys_of(tx, &[user_id], None).await?.device_keys.remove(user_id).unwrap_or_default();
    let devices = devices::list(&mut **tx, user_id).await?;
    for update in updates {
        let mut content = DeviceListUpdateContent::new(
            user_id.to_owned(),
            update.device_id.to_owned(),
            uint(update.position),
        );
        content.prev_id = update.prev.map(uint).into_iter().collect();
        match devices.iter().find(|d| d.device_id == update.device_id) {
            Some(device) => {
                content.device_display_name = device.display_name.clone();
                content.keys = keys.remove(update.device_id);
            }
            None => content.deleted = Some(true),
        }
        outbound::push_edu(tx, servers, &Edu::DeviceListUpdate(content)).await?;
    }
    Ok(())
}

/// Queues an `m.signing_key_update` for `servers` with the user's master and self-signing keys
/// as they are now (the user-signing key is the user's alone).
pub(crate) async fn queue_signing_keys(
    tx: &mut WriteTx,
    servers: &[OwnedServerName],
    user_id: &UserId,
) -> Result<()> {
    if servers.is_empty() {
        return Ok(());
    }
    let mut keys = keys::keys_of(tx, &[user_id], None).await?;
    let mut content = SigningKeyUpdateContent::new(user_id.to_owned());
    content.master_key = keys.master_keys.remove(user_id);
    content.self_signing_key = keys.self_signing_keys.remove(user_id);
    outbound::push_edu(tx, servers, &Edu::SigningKeyUpdate(content)).await
}

/// A stream position as the EDUs carry it (positions start at 1).
fn uint(position: i64) -> UInt {
    UInt::try_from(position).unwrap_or_default()
}
