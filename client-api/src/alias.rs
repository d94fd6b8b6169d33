//! Room aliases (spec: Client-Server API › Room aliases), including the list of a room's local
//! aliases, which the spec documents in the same section.

use hearth_core::{Homeserver, rooms::aliases};
use ruma::api::client::{
    alias::{create_alias, delete_alias, get_alias},
    room::aliases as room_aliases,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3directoryroomroomalias>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    aliases::create(&hs, &req.auth, &req.body.room_alias, &req.body.room_id).await?;
    Ok(create_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3directoryroomroomalias>
pub async fn get(hs: Homeserver, req: Ruma<get_alias::v3::Request>) -> Result<get_alias::v3::Response> {
    let room_id = aliases::resolve(&hs, &req.body.room_alias).await?;
    Ok(get_alias::v3::Response::new(room_id, vec![hs.server_name().to_owned()]))
}

/// `DELETE /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3directoryroomroomalias>
pub async fn delete(
    hs: Homeserver,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    aliases::delete(&hs, &req.auth, &req.body.room_alias).await?;
    Ok(delete_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/rooms/{roomId}/aliases`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidaliases>
pub async fn room_aliases(
    hs: Homeserver,
    req: Ruma<room_aliases::v3::Request>,
) -> Result<room_aliases::v3::Response> {
    let found = aliases::local_aliases(&hs, &req.auth, &req.body.room_id).await?;
    Ok(room_aliases::v3::Response::new(found))
}
