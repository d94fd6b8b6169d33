//! Profiles: display name and avatar (spec: Client-Server API › Profiles).

use ruma::UserId;

use crate::{Error, Homeserver, Result, storage::users};

/// A user's public profile.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Display name.
    pub displayname: Option<String>,
    /// Avatar `mxc://` URI.
    pub avatar_url: Option<String>,
}

/// Longest display name or avatar URL accepted, in bytes.
const MAX_FIELD_BYTES: usize = 256;

/// The profile of a local user, or 404 for unknown and deactivated users.
pub async fn get(hs: &Homeserver, user_id: &UserId) -> Result<Profile> {
    match users::get(hs.db().pool(), user_id).await? {
        Some(u) if !u.deactivated => Ok(Profile { displayname: u.displayname, avatar_url: u.avatar_url }),
        _ => Err(Error::not_found("Profile not found")),
    }
}

/// Sets the display name of `target` on behalf of `actor`.
pub async fn set_displayname(
    hs: &Homeserver,
    actor: &UserId,
    target: &UserId,
    value: Option<&str>,
) -> Result<()> {
    check_own_and_size(actor, target, value)?;
    users::set_displayname(hs.db().pool(), target, value).await?;
    Ok(())
}

/// Sets the avatar URL of `target` on behalf of `actor`.
pub async fn set_avatar_url(
    hs: &Homeserver,
    actor: &UserId,
    target: &UserId,
    value: Option<&str>,
) -> Result<()> {
    check_own_and_size(actor, target, value)?;
    users::set_avatar_url(hs.db().pool(), target, value).await?;
    Ok(())
}

fn check_own_and_size(actor: &UserId, target: &UserId, value: Option<&str>) -> Result<()> {
    if actor != target {
        return Err(Error::forbidden("You may only change your own profile"));
    }
    if value.is_some_and(|v| v.len() > MAX_FIELD_BYTES) {
        return Err(Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::TooLarge,
            format!("Profile fields are limited to {MAX_FIELD_BYTES} bytes"),
        ));
    }
    Ok(())
}
