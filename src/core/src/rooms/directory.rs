//! The room directory (spec: Client-Server API › Listing rooms): which rooms are published, and
//! the paginated, searchable list of them with the summary each entry shows.

use std::collections::HashMap;

use ruma::{
    OwnedMxcUri, OwnedRoomAliasId, OwnedRoomId, RoomId, UInt,
    directory::{PublicRoomsChunk, PublicRoomsChunkInit},
    events::StateEventType,
    room::{JoinRuleKind, RoomType},
};
use serde_json::Value;

use super::power;
use crate::{
    Error, Homeserver, Result,
    accounts::User,
    storage::{directory, rooms, state},
};

/// Most rooms one page of the directory holds (also the page size when none is asked for).
pub const MAX_PAGE: u64 = 500;

/// Whether a room is published in the directory; 404 for unknown rooms.
pub async fn is_published(hs: &Homeserver, room_id: &RoomId) -> Result<bool> {
    rooms::is_public(hs.db().pool(), room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))
}

/// Publishes or unpublishes a room. Allowed to server admins and to members with the power to
/// send `m.room.canonical_alias` (the level that governs how the room is addressed).
pub async fn set_published(hs: &Homeserver, user: &User, room_id: &RoomId, published: bool) -> Result<()> {
    is_published(hs, room_id).await?;
    if !user.is_admin {
        let joined = state::membership(hs.db().pool(), room_id, user.user_id.as_str()).await?;
        let powerful = joined.as_deref() == Some("join")
            && power::can_send_state(hs, room_id, &user.user_id, StateEventType::RoomCanonicalAlias).await?;
        if !powerful {
            return Err(Error::forbidden("You may not change this room's visibility in the directory"));
        }
    }
    rooms::set_public(hs.db().pool(), room_id, published).await?;
    Ok(())
}

/// What a client asks of the directory.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Page size (capped at [`MAX_PAGE`]).
    pub limit: Option<u64>,
    /// A `next_batch` or `prev_batch` token of an earlier page.
    pub since: Option<String>,
    /// Case-insensitive text to find in the name, topic or canonical alias.
    pub search: Option<String>,
}

/// One page of the directory.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The rooms, most joined members first.
    pub chunk: Vec<PublicRoomsChunk>,
    /// Token of the next page, if there is one.
    pub next_batch: Option<String>,
    /// Token of the previous page, if this is not the first.
    pub prev_batch: Option<String>,
    /// How many rooms match in all.
    pub total: u64,
}

/// A page of the published rooms: one query counts, one picks the page, one reads the summary
/// state of the page's rooms from `current_state`.
pub async fn public_rooms(hs: &Homeserver, query: &Query) -> Result<Page> {
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let offset = query.since.as_deref().map(parse_token).transpose()?.unwrap_or(0);
    let pattern = query.search.as_deref().filter(|s| !s.trim().is_empty()).map(directory::like_pattern);
    let backend = hs.db().backend();
    let mut conn = hs.db().pool().acquire().await?;

    let total = directory::count(&mut conn, backend, pattern.as_deref()).await?;
    let (page_limit, page_offset) = (to_i64(limit), to_i64(offset));
    let listed = directory::page(&mut conn, backend, pattern.as_deref(), page_limit, page_offset).await?;
    let ids: Vec<String> = listed.iter().map(|l| l.room_id.clone()).collect();
    let mut summaries: HashMap<String, Summary> = HashMap::new();
    for event in directory::summary_events(&mut conn, &ids).await? {
        let content = serde_json::from_str::<Value>(&event.json)
            .ok()
            .and_then(|mut v| v.get_mut("content").map(Value::take))
            .unwrap_or(Value::Null);
        summaries.entry(event.room_id).or_default().add(&event.kind, &content);
    }

    let chunk = listed
        .into_iter()
        .filter_map(|l| {
            let room_id = OwnedRoomId::try_from(l.room_id.as_str()).ok()?;
            let summary = summaries.remove(&l.room_id).unwrap_or_default();
            Some(summary.into_chunk(room_id, l.joined))
        })
        .collect::<Vec<_>>();
    let total = u64::try_from(total).unwrap_or(0);
    let end = offset + u64::try_from(chunk.len()).unwrap_or(0);
    Ok(Page {
        chunk,
        next_batch: (end < total).then(|| token(end)),
        prev_batch: (offset > 0).then(|| token(offset.saturating_sub(limit))),
        total,
    })
}

/// The summary state of one listed room.
#[derive(Clone, Debug, Default)]
struct Summary {
    name: Option<String>,
    topic: Option<String>,
    canonical_alias: Option<OwnedRoomAliasId>,
    avatar_url: Option<OwnedMxcUri>,
    join_rule: Option<JoinRuleKind>,
    world_readable: bool,
    guest_can_join: bool,
    room_type: Option<RoomType>,
}

impl Summary {
    fn add(&mut self, kind: &str, content: &Value) {
        let field = |name: &str| content.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        match kind {
            "m.room.create" => self.room_type = field("type").map(RoomType::from),
            "m.room.name" => self.name = field("name").map(str::to_owned),
            "m.room.topic" => self.topic = field("topic").map(str::to_owned),
            "m.room.canonical_alias" => {
                self.canonical_alias = field("alias").and_then(|a| OwnedRoomAliasId::try_from(a).ok());
            }
            "m.room.avatar" => self.avatar_url = field("url").map(OwnedMxcUri::from),
            "m.room.join_rules" => self.join_rule = field("join_rule").map(JoinRuleKind::from),
            "m.room.history_visibility" => {
                self.world_readable = field("history_visibility") == Some("world_readable");
            }
            "m.room.guest_access" => self.guest_can_join = field("guest_access") == Some("can_join"),
            _ => {}
        }
    }

    fn into_chunk(self, room_id: OwnedRoomId, joined: i64) -> PublicRoomsChunk {
        let mut chunk: PublicRoomsChunk = PublicRoomsChunkInit {
            num_joined_members: UInt::try_from(joined).unwrap_or_default(),
            room_id,
            world_readable: self.world_readable,
            guest_can_join: self.guest_can_join,
        }
        .into();
        chunk.name = self.name;
        chunk.topic = self.topic;
        chunk.canonical_alias = self.canonical_alias;
        chunk.avatar_url = self.avatar_url;
        // The spec's default join rule for a listing is `public`; a room without the event
        // gets the auth rules' default, `invite`.
        chunk.join_rule = self.join_rule.unwrap_or(JoinRuleKind::Invite);
        chunk.room_type = self.room_type;
        chunk
    }
}

/// Pagination tokens are offsets into the ordered list: `o<offset>`.
fn token(offset: u64) -> String {
    format!("o{offset}")
}

fn parse_token(token: &str) -> Result<u64> {
    token
        .strip_prefix('o')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::invalid_param("Invalid pagination token"))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pagination_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_token(&token(40)).expect("valid"), 40);
        assert!(parse_token("40").is_err());
        assert!(parse_token("ox").is_err());
    }

    #[test]
    fn summaries_read_the_listing_fields_from_state_content() {
        let mut summary = Summary::default();
        summary.add("m.room.name", &json!({ "name": "Tea" }));
        summary.add("m.room.join_rules", &json!({ "join_rule": "knock" }));
        summary.add("m.room.history_visibility", &json!({ "history_visibility": "world_readable" }));
        summary.add("m.room.guest_access", &json!({ "guest_access": "forbidden" }));
        summary.add("m.room.create", &json!({ "type": "m.space" }));
        let room_id = OwnedRoomId::try_from("!r:x.org").expect("room ID");
        let chunk = summary.into_chunk(room_id, 3);
        assert_eq!(chunk.name.as_deref(), Some("Tea"));
        assert_eq!(chunk.join_rule, JoinRuleKind::Knock);
        assert!(chunk.world_readable && !chunk.guest_can_join);
        assert_eq!(chunk.room_type, Some(RoomType::Space));
        assert_eq!(chunk.num_joined_members, UInt::from(3_u32));
    }
}
