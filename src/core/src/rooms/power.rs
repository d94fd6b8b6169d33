//! Power levels of a room at its head, for the checks the auth rules leave to the server
//! (who may redact others' events, who may upgrade a room).

use ruma::{
    OwnedUserId, RoomId, UserId,
    events::{
        StateEventType,
        room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource},
    },
};
use serde::Deserialize;

use super::{Pdu, RoomHead, auth};
use crate::{Error, Homeserver, Result, storage::Conn};

#[derive(Deserialize)]
struct CreateContent {
    creator: Option<OwnedUserId>,
    #[serde(default)]
    additional_creators: Vec<OwnedUserId>,
}

/// The power levels in force at `head`: from its `m.room.power_levels` event, or the spec's
/// defaults when there is none; room creators count as infinitely powerful from v12 on.
pub async fn levels(hs: &Homeserver, conn: &mut Conn, head: &RoomHead) -> Result<RoomPowerLevels> {
    let mut wanted = Vec::with_capacity(2);
    wanted.extend(head.state_event_id("m.room.create", ""));
    wanted.extend(head.state_event_id("m.room.power_levels", ""));
    let events = auth::load(hs, conn, head, &wanted).await?;
    let find = |kind: &str| events.values().find(|e| e.kind.to_string() == kind);
    let creators = find("m.room.create").map(|e| creators(head, e)).unwrap_or_default();
    let source = match find("m.room.power_levels") {
        Some(pl) => RoomPowerLevelsSource::Original(
            serde_json::from_str::<RoomPowerLevelsEventContent>(pl.content.get())
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored power levels: {e}")))?,
        ),
        None => RoomPowerLevelsSource::None,
    };
    Ok(RoomPowerLevels::new(source, &head.rules.authorization, creators))
}

/// The room's creators: the create event's sender (or `creator` before v11), plus the
/// `additional_creators` of v12.
pub fn creators(head: &RoomHead, create: &Pdu) -> Vec<OwnedUserId> {
    let content: Option<CreateContent> = serde_json::from_str(create.content.get()).ok();
    let rules = &head.rules.authorization;
    let first = match content.as_ref().and_then(|c| c.creator.clone()) {
        Some(creator) if !rules.use_room_create_sender => creator,
        _ => create.sender.clone(),
    };
    let mut all = vec![first];
    if rules.additional_room_creators {
        all.extend(content.map(|c| c.additional_creators).unwrap_or_default());
    }
    all
}

/// Whether `user` may now send a state event of type `kind` in a room, judged by the current
/// power levels (for server-side checks such as alias deletion and directory visibility).
pub async fn can_send_state(
    hs: &Homeserver,
    room_id: &RoomId,
    user: &UserId,
    kind: StateEventType,
) -> Result<bool> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::load(&mut conn, room_id).await?;
    Ok(levels(hs, &mut conn, &head).await?.user_can_send_state(user, kind))
}
