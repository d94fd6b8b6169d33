//! Room aliases (spec: Client-Server API › Room aliases).

use ruma::{OwnedRoomId, RoomAliasId};

use crate::{Error, Homeserver, Result, storage::aliases};

/// The room a local alias points at, or 404.
pub async fn resolve(hs: &Homeserver, alias: &RoomAliasId) -> Result<OwnedRoomId> {
    aliases::get(hs.db().pool(), alias)
        .await?
        .map(|(room_id, _)| room_id)
        .ok_or_else(|| Error::not_found("Room alias not found"))
}
