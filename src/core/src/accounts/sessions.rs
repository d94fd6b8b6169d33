//! Login sessions: a device plus its access token. Tokens are 256 random bits handed to the
//! client once; only their SHA-256 digest is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::StatusCode;
use rand::RngCore;
use ruma::{DeviceId, OwnedDeviceId, UserId, api::error::ErrorKind};
use sha2::{Digest, Sha256};

use super::{User, localpart, password};
use crate::{
    Error, Homeserver, Result,
    storage::{devices, tokens, users},
    time::now_ms,
};

/// What a client receives after registering or logging in.
#[derive(Clone, Debug)]
pub struct Session {
    /// The bearer token.
    pub access_token: String,
    /// The device the token belongs to.
    pub device_id: OwnedDeviceId,
}

/// Creates (or takes over) a device for `user_id` and issues it a fresh token. An existing
/// device keeps its name unless a new one is given; its old token stops working.
pub async fn start(
    hs: &Homeserver,
    user_id: &UserId,
    device_id: Option<OwnedDeviceId>,
    display_name: Option<&str>,
) -> Result<Session> {
    let device_id = device_id.unwrap_or_else(DeviceId::new);
    let access_token = new_token();
    let now = now_ms();
    let mut tx = hs.db().begin().await?;
    devices::upsert(&mut tx, user_id, &device_id, display_name, now).await?;
    tokens::replace_for_device(&mut tx, &digest(&access_token), user_id, &device_id, now).await?;
    // A new device is no device-list change until it uploads identity keys (spec: Tracking the
    // device list): announcing every login woke every syncing member of the user's rooms, which
    // made a burst of logins quadratic (docs/BENCHMARKS.md, idle).
    tx.commit().await?;
    // The device's previous token, if any, just died; a device taken over may have lost its
    // keys with its deletion.
    hs.token_cache().clear();
    crate::e2ee::keys::key_counts_changed(hs, user_id, &device_id);
    Ok(Session { access_token, device_id })
}

/// `m.login.password`: checks the password of the user named by `identifier` (full ID, bare
/// localpart, any case). Wrong password and unknown user fail alike, so the answer does not
/// reveal which accounts exist.
pub async fn check_password(hs: &Homeserver, identifier: &str, password: &str) -> Result<ruma::OwnedUserId> {
    let forbidden = || Error::forbidden("Invalid username or password");
    let user_id = localpart::user_id_for_login(identifier, hs.server_name()).ok_or_else(forbidden)?;
    let user = users::get(hs.db().pool(), &user_id).await?.ok_or_else(forbidden)?;
    let hash = user.password_hash.as_deref().ok_or_else(forbidden)?;
    if !password::verify(hs, hash, password).await? {
        return Err(forbidden());
    }
    if user.deactivated {
        return Err(Error::matrix(
            StatusCode::FORBIDDEN,
            ErrorKind::UserDeactivated,
            "This account has been deactivated",
        ));
    }
    Ok(user.user_id)
}

/// Resolves an access token to its user and device.
pub async fn authenticate(hs: &Homeserver, access_token: &str) -> Result<User> {
    let digest = digest(access_token);
    if let Some(user) = hs.token_cache().get(&digest) {
        return Ok(user);
    }
    let owner = tokens::owner(hs.db().pool(), &digest).await?.ok_or_else(|| {
        Error::matrix(
            StatusCode::UNAUTHORIZED,
            ErrorKind::UnknownToken(Default::default()),
            "Unknown or expired access token",
        )
    })?;
    let user = User { user_id: owner.user_id, device_id: owner.device_id, is_admin: owner.is_admin };
    hs.token_cache().put(digest, user.clone());
    Ok(user)
}

/// `/logout`: the token's device (and so the token) is deleted.
pub async fn logout(hs: &Homeserver, user: &User) -> Result<()> {
    super::devices::delete(hs, &user.user_id, &[&user.device_id]).await
}

/// `/logout/all`: every device of the user is deleted.
pub async fn logout_all(hs: &Homeserver, user: &User) -> Result<()> {
    let tx = hs.db().begin().await?;
    super::devices::delete_all_except(hs, tx, &user.user_id, None).await
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("hth_{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 64);
    }
}
