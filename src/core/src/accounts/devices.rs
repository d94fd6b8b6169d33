//! A user's devices (spec: Client-Server API › Device management).

use ruma::{DeviceId, UserId};

use super::{User, password, registration};
use crate::{
    Error, Homeserver, Result,
    e2ee::device_lists,
    storage::{
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
/// display name is unchanged").
pub async fn rename(
    hs: &Homeserver,
    user_id: &UserId,
    device_id: &DeviceId,
    name: Option<&str>,
) -> Result<()> {
    let Some(name) = name else {
        return get(hs, user_id, device_id).await.map(drop);
    };
    if devices::set_display_name(hs.db().pool(), user_id, device_id, Some(name)).await? {
        Ok(())
    } else {
        Err(unknown_device())
    }
}

/// Deletes devices (and their tokens). Unknown IDs are ignored, as the spec allows.
pub async fn delete(hs: &Homeserver, user_id: &UserId, device_ids: &[&DeviceId]) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let mut deleted = false;
    for device_id in device_ids {
        deleted |= devices::delete(&mut tx, user_id, device_id).await?;
    }
    if deleted {
        device_lists::record_change(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    hs.token_cache().clear();
    if deleted {
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
    let deleted = logout_devices
        && devices::delete_all_except(&mut tx, &user.user_id, Some(&user.device_id)).await? > 0;
    if deleted {
        device_lists::record_change(&mut tx, &user.user_id).await?;
    }
    tx.commit().await?;
    hs.token_cache().clear();
    if deleted {
        device_lists::announce(hs, &user.user_id);
    }
    Ok(())
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
    let deleted = devices::delete_all_except(&mut tx, user_id, None).await? > 0;
    if deleted {
        device_lists::record_change(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    hs.token_cache().clear();
    if deleted {
        device_lists::announce(hs, user_id);
    }
    Ok(())
}

/// Deactivates the account: no password, no devices, no tokens, no profile.
pub async fn deactivate(hs: &Homeserver, user_id: &UserId) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    users::deactivate(&mut tx, user_id).await?;
    let deleted = devices::delete_all_except(&mut tx, user_id, None).await? > 0;
    if deleted {
        device_lists::record_change(&mut tx, user_id).await?;
    }
    tx.commit().await?;
    hs.token_cache().clear();
    if deleted {
        device_lists::announce(hs, user_id);
    }
    tracing::info!(user_id = %user_id, "deactivated account");
    Ok(())
}

fn unknown_device() -> Error {
    Error::not_found("No such device")
}
