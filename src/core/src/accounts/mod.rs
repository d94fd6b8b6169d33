//! Local accounts: registration, login sessions and access tokens, user-interactive auth,
//! devices, profiles, and the shared-secret admin registration of operator tools.

pub mod admin_register;
pub mod devices;
pub mod localpart;
pub mod password;
pub mod profile;
pub mod registration;
pub mod sessions;
pub mod token_cache;
pub mod uia;

use ruma::{OwnedDeviceId, OwnedUserId};

/// An authenticated local user, as proven by an access token.
#[derive(Clone, Debug)]
pub struct User {
    /// The user.
    pub user_id: OwnedUserId,
    /// The device whose token authenticated the request.
    pub device_id: OwnedDeviceId,
    /// Whether the user is a server administrator.
    pub is_admin: bool,
}
