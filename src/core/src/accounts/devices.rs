//! A user's devices (spec: Client-Server API › Device management).

use ruma::{DeviceId, OwnedDeviceId, UserId};

use super::{User, password, registration};
use crate::{
    Error, Homeserver, Result,
    e2ee::device_lists::{self, Change},
    storage::{
        WriteTx,
        devices::{self, DeviceRow},
        users,
    },
};

/// Every device of the user.
pub async fn list(hs: &Homeserver, user_id: &UserId) -> Result<Vec<DeviceRow>> {
    Ok(devices::list(hs.db().pool(), user_id).await?)
}

/// One device, or 404.
pub async fn get(hs: &Homeserver, user_id: &UserId, device_id: &DeviceId) -> Result<DeviceRow> {
    devices::get(hs.db().pool(), user_id, device_id).await?.ok_or_else(unknown_device)
}

/// Renames a device, or 404. Without a name the device keeps its own (spec: "If not given, the
/// display name is unchanged"). Other servers see the name (spec: Server-Server API › Device
/// Management), so a rename is a device-list change.
pub async fn rename(
    hs: &Homeserver,
    user_id: &UserId,
    device_id: &DeviceId,
    name: Option<&str>,
) -> Result<()> {
    let Some(name) = name else {
        return get(hs, user_id, device_id).await.map(drop);
    };
    let mut tx = hs.db().begin().await?;
    if !devices::set_display_name(&mut *tx, user_id, device_id, Some(name)).await? {
        return Err(unknown_device());
    }
    device_lists::record_change(hs, &mut tx, user_id, Change::Devices(&[device_id.to_owned()])).await?;
    tx.commit().await?;
    device_lists::announce(hs, user_id);
    Ok(())
}

/// Deletes devices (and their tokens). Unknown IDs are ignored, as the spec allows.
pub async fn delete(hs: &Homeserver, user_id: &UserId, device_ids: &[&DeviceId]) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let mut deleted = Vec::new();
    for device_id in device_ids {
        if devices::delete(&mut tx, user_id, device_id).await? {
            deleted.push((*device_id).to_owned());
        }
    }
    finish_deleting(hs, tx, user_id, &deleted).await
}

/// Deletes every device of the user but `keep` (with their tokens) in `tx`, records the
/// device-list change, commits and announces it.
pub(super) async fn delete_all_except(
    hs: &Homeserver,
    mut tx: WriteTx,
    user_id: &UserId,
    keep: Option<&DeviceId>,
) -> Result<()> {
    let deleted = devices::delete_all_except(&mut tx, user_id, keep).await?;
    finish_deleting(hs, tx, user_id, &deleted).await
}

/// Records the deletion of `deleted` (if any) in `tx`, commits, forgets cached tokens and
/// announces the change.
async fn finish_deleting(
    hs: &Homeserver,
    mut tx: WriteTx,
    user_id: &UserId,
    deleted: &[OwnedDeviceId],
) -> Result<()> {
    if !deleted.is_empty() {
        device_lists::record_change(hs, &mut tx, user_id, Change::Devices(deleted)).await?;
    }
    tx.commit().await?;
    hs.token_cache().clear();
    if !deleted.is_empty() {
        device_lists::announce(hs, user_id);
    }
    Ok(())
}

/// Changes the user's password; with `logout_devices`, every other device is deleted.
pub async fn change_password(
    hs: &Homeserver,
    user: &User,
    new_password: &str,
    logout_devices: bool,
) -> Result<()> {
    registration::check_password_policy(hs, new_password)?;
    let hash = password::hash(hs, new_password).await?;
    let mut tx = hs.db().begin().await?;
    users::set_password_hash(&mut tx, &user.user_id, &hash).await?;
    if logout_devices {
        delete_all_except(hs, tx, &user.user_id, Some(&user.device_id)).await
    } else {
        tx.commit().await?;
        Ok(())
    }
}

/// Operator password reset: sets the password and logs out every device.
pub async fn reset_password(hs: &Homeserver, user_id: &UserId, new_password: &str) -> Result<()> {
    registration::check_password_policy(hs, new_password)?;
    let user = users::get(hs.db().pool(), user_id).await?;
    if user.is_none_or(|u| u.deactivated) {
        return Err(Error::not_found("No such active user"));
    }
    let hash = password::hash(hs, new_password).await?;
    let mut tx = hs.db().begin().await?;
    users::set_password_hash(&mut tx, user_id, &hash).await?;
    delete_all_except(hs, tx, user_id, None).await
}

/// Deactivates the account: no password, no devices, no tokens, no profile.
pub async fn deactivate(hs: &Homeserver, user_id: &UserId) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    users::deactivate(&mut tx, user_id).await?;
    delete_all_except(hs, tx, user_id, None).await?;
    tracing::info!(user_id = %user_id, "deactivated account");
    Ok(())
}

fn unknown_device() -> Error {
    Error::not_found("No such device")
}
