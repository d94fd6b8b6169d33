//! Profiles (spec: Client-Server API › Profiles).

use hearth_core::{Homeserver, accounts::profile, rooms::profile as room_profile};
use ruma::{
    OwnedMxcUri,
    api::client::profile::{get_avatar_url, get_display_name, get_profile, set_avatar_url, set_display_name},
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/profile/{userId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3profileuserid>
pub async fn get(hs: Homeserver, req: Ruma<get_profile::v3::Request>) -> Result<get_profile::v3::Response> {
    let found = profile::get(&hs, &req.body.user_id).await?;
    let mut response = get_profile::v3::Response::new();
    if let Some(name) = found.displayname {
        response.set("displayname".to_owned(), name.into());
    }
    if let Some(url) = found.avatar_url {
        response.set("avatar_url".to_owned(), url.into());
    }
    Ok(response)
}

/// `GET /_matrix/client/v3/profile/{userId}/displayname`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3profileuseriddisplayname>
pub async fn get_displayname(
    hs: Homeserver,
    req: Ruma<get_display_name::v3::Request>,
) -> Result<get_display_name::v3::Response> {
    let found = profile::get(&hs, &req.body.user_id).await?;
    Ok(get_display_name::v3::Response::new(found.displayname))
}

/// `PUT /_matrix/client/v3/profile/{userId}/displayname`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3profileuseriddisplayname>
pub async fn set_displayname(
    hs: Homeserver,
    req: Ruma<set_display_name::v3::Request>,
) -> Result<set_display_name::v3::Response> {
    let body = req.body;
    room_profile::set_displayname(&hs, &req.auth.user_id, &body.user_id, body.displayname.as_deref()).await?;
    Ok(set_display_name::v3::Response::new())
}

/// `GET /_matrix/client/v3/profile/{userId}/avatar_url`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3profileuseridavatar_url>
pub async fn get_avatar(
    hs: Homeserver,
    req: Ruma<get_avatar_url::v3::Request>,
) -> Result<get_avatar_url::v3::Response> {
    let found = profile::get(&hs, &req.body.user_id).await?;
    Ok(get_avatar_url::v3::Response::new(found.avatar_url.map(OwnedMxcUri::from)))
}

/// `PUT /_matrix/client/v3/profile/{userId}/avatar_url`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3profileuseridavatar_url>
pub async fn set_avatar(
    hs: Homeserver,
    req: Ruma<set_avatar_url::v3::Request>,
) -> Result<set_avatar_url::v3::Response> {
    let body = req.body;
    let url = body.avatar_url.as_ref().map(|u| u.as_str());
    room_profile::set_avatar_url(&hs, &req.auth.user_id, &body.user_id, url).await?;
    Ok(set_avatar_url::v3::Response::new())
}
