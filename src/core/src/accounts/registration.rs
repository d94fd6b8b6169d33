//! Account registration (spec: Client-Server API › Account registration).

use http::StatusCode;
use ruma::{
    OwnedDeviceId, OwnedUserId,
    api::{
        client::uiaa::{AuthFlow, AuthType},
        error::ErrorKind,
    },
};

use super::{
    localpart, password,
    sessions::{self, Session},
};
use crate::{Error, Homeserver, Result, storage::users, time::now_ms};

/// What a new account is made of.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    /// Requested localpart (any case); a random one when `None`.
    pub username: Option<String>,
    /// Initial password; an account without one can only be used through its first session.
    pub password: Option<String>,
    /// Initial display name; defaults to the localpart.
    pub displayname: Option<String>,
    /// Whether the account is a server administrator.
    pub is_admin: bool,
    /// Device ID for the first session.
    pub device_id: Option<OwnedDeviceId>,
    /// Display name of the first device.
    pub device_display_name: Option<String>,
    /// When `true`, no session is started.
    pub inhibit_login: bool,
}

/// A freshly created account.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The new user ID.
    pub user_id: OwnedUserId,
    /// The first session, unless `inhibit_login` was set.
    pub session: Option<Session>,
}

/// The UIA flows `/register` offers under the current configuration.
pub fn flows(hs: &Homeserver) -> Vec<AuthFlow> {
    if hs.config().registration.tokens.is_empty() {
        vec![AuthFlow::new(vec![AuthType::Dummy])]
    } else {
        vec![AuthFlow::new(vec![AuthType::RegistrationToken])]
    }
}

/// Fails with `M_FORBIDDEN` when open registration is switched off.
pub fn ensure_enabled(hs: &Homeserver) -> Result<()> {
    if hs.config().registration.enabled {
        Ok(())
    } else {
        Err(Error::forbidden("Registration is disabled on this server"))
    }
}

/// `/register/available`: `Ok` if the name is valid and free.
pub async fn check_available(hs: &Homeserver, username: &str) -> Result<()> {
    let user_id = localpart::user_id_for_new_account(username, hs.server_name())?;
    if users::exists(hs.db().pool(), &user_id).await? {
        return Err(user_in_use());
    }
    Ok(())
}

/// Validates a new password against the configured policy.
pub fn check_password_policy(hs: &Homeserver, password: &str) -> Result<()> {
    let min = hs.config().registration.min_password_length;
    if password.chars().count() < min {
        return Err(Error::matrix(
            StatusCode::BAD_REQUEST,
            ErrorKind::WeakPassword,
            format!("The password must be at least {min} characters long"),
        ));
    }
    Ok(())
}

/// Creates the account (and its first session). Authorisation (UIA, shared secret) is the
/// caller's business.
pub async fn register(hs: &Homeserver, new: NewAccount) -> Result<Registered> {
    let requested = new.username.unwrap_or_else(localpart::random);
    let user_id = localpart::user_id_for_new_account(&requested, hs.server_name())?;
    let hash = match &new.password {
        Some(p) => {
            check_password_policy(hs, p)?;
            Some(password::hash(hs, p).await?)
        }
        None => None,
    };
    let displayname = new.displayname.unwrap_or_else(|| user_id.localpart().to_owned());
    let mut tx = hs.db().begin().await?;
    let created =
        users::insert(&mut tx, &user_id, hash.as_deref(), Some(&displayname), new.is_admin, now_ms()).await?;
    if !created {
        return Err(user_in_use());
    }
    tx.commit().await?;
    tracing::info!(user_id = %user_id, "registered a new account");

    let session = if new.inhibit_login {
        None
    } else {
        Some(sessions::start(hs, &user_id, new.device_id, new.device_display_name.as_deref()).await?)
    };
    Ok(Registered { user_id, session })
}

fn user_in_use() -> Error {
    Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::UserInUse, "This user ID is already taken")
}
