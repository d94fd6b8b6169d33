//! Queries other servers make about our users (spec: Server-Server API › Querying for information).

use hearth_core::{Error, accounts::profile, rooms::aliases};
use ruma::{
    api::federation::query::{
        get_profile_information::v1 as profile_query, get_room_information::v1 as directory_query,
    },
    profile::ProfileFieldName,
};

use crate::{FedResult, FedRuma, Federation};

/// `GET /_matrix/federation/v1/query/profile`: a local user's display name and avatar, or just
/// the `field` asked for.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1queryprofile>
pub async fn get_profile(
    fed: Federation,
    req: FedRuma<profile_query::Request>,
) -> FedResult<profile_query::Response> {
    let user_id = &req.body.user_id;
    if user_id.server_name() != fed.hs().server_name() {
        return Err(Error::not_found("The user is not a user of this server").into());
    }
    let found = profile::get(fed.hs(), user_id).await?;
    let wanted = |field: ProfileFieldName| req.body.field.as_ref().is_none_or(|asked| *asked == field);
    let mut response = profile_query::Response::new();
    if let Some(name) = found.displayname.filter(|_| wanted(ProfileFieldName::DisplayName)) {
        response.set("displayname".to_owned(), name.into());
    }
    if let Some(url) = found.avatar_url.filter(|_| wanted(ProfileFieldName::AvatarUrl)) {
        response.set("avatar_url".to_owned(), url.into());
    }
    Ok(response)
}

/// `GET /_matrix/federation/v1/query/directory`: the room one of our aliases points at.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1querydirectory>
pub async fn get_room_information(
    fed: Federation,
    req: FedRuma<directory_query::Request>,
) -> FedResult<directory_query::Response> {
    let alias = &req.body.room_alias;
    if alias.server_name() != fed.hs().server_name() {
        return Err(Error::not_found("The alias is not one of this server's").into());
    }
    let room_id = aliases::resolve(fed.hs(), alias).await?;
    Ok(directory_query::Response::new(room_id, vec![fed.hs().server_name().to_owned()]))
}
