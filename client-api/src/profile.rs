//! Profiles (spec: Client-Server API › Profiles).

use hearth_core::{
    Homeserver,
    accounts::profile::{self, Profile},
    rooms::profile as room_profile,
};
use hearth_federation::Federation;
use ruma::{
    OwnedMxcUri, UserId,
    api::{
        client::profile::{get_avatar_url, get_display_name, get_profile, set_avatar_url, set_display_name},
        federation::query::get_profile_information::v1 as profile_query,
    },
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/profile/{userId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3profileuserid>
pub async fn get(fed: Federation, req: Ruma<get_profile::v3::Request>) -> Result<get_profile::v3::Response> {
    let found = profile_of(&fed, &req.body.user_id).await?;
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
    fed: Federation,
    req: Ruma<get_display_name::v3::Request>,
) -> Result<get_display_name::v3::Response> {
    let found = profile_of(&fed, &req.body.user_id).await?;
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
    fed: Federation,
    req: Ruma<get_avatar_url::v3::Request>,
) -> Result<get_avatar_url::v3::Response> {
    let found = profile_of(&fed, &req.body.user_id).await?;
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

/// The profile of a local user, or of another server's user as that server tells it
/// (`/_matrix/federation/v1/query/profile`).
async fn profile_of(fed: &Federation, user_id: &UserId) -> Result<Profile> {
    if user_id.server_name() == fed.hs().server_name() {
        return Ok(profile::get(fed.hs(), user_id).await?);
    }
    let request = profile_query::Request::new(user_id.to_owned());
    let answer = fed.client().send(user_id.server_name(), request).await.map_err(hearth_core::Error::from)?;
    let text = |field: &str| answer.get(field).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(Profile { displayname: text("displayname"), avatar_url: text("avatar_url") })
}
