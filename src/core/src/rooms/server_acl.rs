//! Server access control lists (spec: Client-Server API › Server Access Control Lists): a room's
//! `m.room.server_acl` state says which servers may take part; PDUs, EDUs and federation
//! requests about the room from any other are refused.

use ruma::{RoomId, ServerName, events::room::server_acl::RoomServerAclEventContent};

use super::{RoomHead, auth};
use crate::{Error, Homeserver, Result};

/// 403 `M_FORBIDDEN` when the room's current ACL denies `server`; rooms without one allow all.
pub async fn check(hs: &Homeserver, room_id: &RoomId, server: &ServerName) -> Result<()> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    let Some(id) = head.state_event_id("m.room.server_acl", "") else { return Ok(()) };
    let Some(acl) = auth::load(hs, &mut conn, &head, &[id]).await?.into_values().next() else {
        return Ok(());
    };
    // An ACL whose content does not parse denies nobody (it is not a valid ACL).
    match serde_json::from_str::<RoomServerAclEventContent>(acl.content.get()) {
        Ok(content) if !content.is_allowed(server) => {
            Err(Error::forbidden("Server denied by the room's ACL"))
        }
        _ => Ok(()),
    }
}
