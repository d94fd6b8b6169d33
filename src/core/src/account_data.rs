//! Account data (spec: Client-Server API › Client Config), room tags (› Room Tagging) and the
//! fully read marker (› Read and unread markers): JSON objects a user keeps on their server,
//! global or per room, visible only to them. Every write takes a new position in the account
//! data stream, which `/sync` delivers from.

use std::sync::Arc;

use http::StatusCode;
use ruma::{EventId, OwnedUserId, RoomId, UserId, api::error::ErrorKind, push::Ruleset};
use serde_json::{Map, Value, json, value::RawValue};

use crate::{
    Error, Homeserver, Result,
    rooms::{history, membership::membership_of},
    storage::{
        Conn,
        account_data::{self, GLOBAL},
        events,
        streams::{self, Stream},
    },
};

/// Types the server maintains itself: clients read them as usual but set them through other
/// endpoints (`/read_markers`, `/pushrules`), never through the account data API.
const SERVER_MANAGED: [&str; 2] = ["m.fully_read", "m.push_rules"];
/// The room account data type holding a room's tags.
const TAGS: &str = "m.tag";
/// The room account data type holding the fully read marker.
const FULLY_READ: &str = "m.fully_read";
/// The global account data type listing the users a user ignores.
pub const IGNORED_USERS: &str = "m.ignored_user_list";
/// Longest tag name in bytes (spec: Room Tagging).
const MAX_TAG_BYTES: usize = 255;

/// Fails with 403 unless `requester` is `owner`: users may only see and change their own
/// account data.
pub fn ensure_own(requester: &UserId, owner: &UserId) -> Result<()> {
    if requester == owner {
        Ok(())
    } else {
        Err(Error::forbidden("Cannot access the account data of other users"))
    }
}

/// The users `user` ignores (their `m.ignored_user_list`).
pub async fn ignored_users(hs: &Homeserver, user: &UserId) -> Result<Arc<Vec<OwnedUserId>>> {
    hs.ignored_users()
        .get(user, || async {
            let content = account_data::get(hs.db().pool(), user, GLOBAL, IGNORED_USERS).await?;
            Ok(Arc::new(content.as_deref().map(ignored_in).unwrap_or_default()))
        })
        .await
}

/// The users an `m.ignored_user_list` content names (the keys of `ignored_users`).
pub fn ignored_in(content: &str) -> Vec<OwnedUserId> {
    let parsed: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    parsed["ignored_users"]
        .as_object()
        .map(|users| users.keys().filter_map(|u| OwnedUserId::try_from(u.as_str()).ok()).collect())
        .unwrap_or_default()
}

/// The content of `user`'s account data of type `kind`, global or in `room_id`; 404 when unset.
/// Global `m.push_rules` that were never changed are the server-default rules.
pub async fn get(
    hs: &Homeserver,
    user: &UserId,
    room_id: Option<&RoomId>,
    kind: &str,
) -> Result<Box<RawValue>> {
    let room = room_id.map_or(GLOBAL, RoomId::as_str);
    if let Some(content) = account_data::get(hs.db().pool(), user, room, kind).await? {
        return RawValue::from_string(content)
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("stored account data")));
    }
    if room_id.is_none() && kind == "m.push_rules" {
        let rules = json!({ "global": Ruleset::server_default(user) });
        return serde_json::value::to_raw_value(&rules).map_err(|e| Error::Internal(e.into()));
    }
    Err(Error::not_found("Account data not found"))
}

/// Sets account data on a client's request: the content must be a JSON object (400
/// `M_BAD_JSON`), and server-managed types are refused with 405 `M_BAD_JSON` as the spec
/// requires, globally and in rooms alike.
pub async fn set(
    hs: &Homeserver,
    user: &UserId,
    room_id: Option<&RoomId>,
    kind: &str,
    content: &str,
) -> Result<()> {
    if SERVER_MANAGED.contains(&kind) {
        return Err(Error::matrix(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::BadJson,
            format!("Cannot set {kind} through the account data API"),
        ));
    }
    let content: Map<String, Value> = serde_json::from_str(content)
        .map_err(|_| Error::bad_json("Account data content must be a JSON object"))?;
    let room = room_id.map_or(GLOBAL, RoomId::as_str);
    let mut tx = hs.db().begin().await?;
    let position = streams::next_position(&mut tx, Stream::AccountData).await?;
    account_data::put(&mut tx, user, room, kind, &Value::Object(content).to_string(), position).await?;
    tx.commit().await?;
    if kind == IGNORED_USERS && room_id.is_none() {
        hs.ignored_users().forget(user);
    }
    hs.notifier().wake_users([user]);
    Ok(())
}

// === Room tags ===

/// The tags `user` set on `room_id`: the `tags` object of the `m.tag` room account data, each
/// tag mapped to its info (e.g. `order`).
pub async fn tags(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<Map<String, Value>> {
    let stored = account_data::get(hs.db().pool(), user, room_id.as_str(), TAGS).await?;
    Ok(tags_of(stored.as_deref()))
}

/// Adds or replaces the tag `tag` on `room_id` with `info`.
pub async fn set_tag(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    tag: &str,
    info: Map<String, Value>,
) -> Result<()> {
    if tag.len() > MAX_TAG_BYTES {
        return Err(Error::invalid_param(format!("Tag names are limited to {MAX_TAG_BYTES} bytes")));
    }
    edit_tags(hs, user, room_id, |tags| {
        tags.insert(tag.to_owned(), Value::Object(info));
        true
    })
    .await
}

/// Removes the tag `tag` from `room_id`; removing a tag that is not set succeeds and changes
/// nothing.
pub async fn delete_tag(hs: &Homeserver, user: &UserId, room_id: &RoomId, tag: &str) -> Result<()> {
    edit_tags(hs, user, room_id, |tags| tags.remove(tag).is_some()).await
}

/// Read-modify-write of the `m.tag` content in one transaction; `edit` says whether it changed
/// anything. Taking the stream position first serialises concurrent edits of the stream, so no
/// tag added at the same time is lost.
async fn edit_tags(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    edit: impl FnOnce(&mut Map<String, Value>) -> bool,
) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let position = streams::next_position(&mut tx, Stream::AccountData).await?;
    let stored = account_data::get(&mut *tx, user, room_id.as_str(), TAGS).await?;
    let mut tags = tags_of(stored.as_deref());
    if !edit(&mut tags) {
        return Ok(());
    }
    let content = json!({ "tags": tags }).to_string();
    account_data::put(&mut tx, user, room_id.as_str(), TAGS, &content, position).await?;
    tx.commit().await?;
    hs.notifier().wake_users([user]);
    Ok(())
}

/// The `tags` object of stored `m.tag` content; empty when unset or not an object (a client may
/// have written anything through the account data API).
fn tags_of(stored: Option<&str>) -> Map<String, Value> {
    let content: Option<Value> = stored.and_then(|s| serde_json::from_str(s).ok());
    match content {
        Some(Value::Object(mut content)) => match content.remove("tags") {
            Some(Value::Object(tags)) => tags,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

// === Fully read marker ===

/// A `/read_markers` request (spec: Read and unread markers): the user must be joined (403).
/// `fully_read` moves the fully read marker, the `m.fully_read` room account data; the event must
/// be in the room and visible to the user (404). Like Synapse, the marker only moves forward: a
/// marker at an earlier event than the current one (from a stale client) leaves it in place.
pub async fn set_read_markers(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    fully_read: Option<&EventId>,
) -> Result<()> {
    ensure_joined(hs, user, room_id).await?;
    let Some(event_id) = fully_read else {
        return Ok(());
    };
    history::event(hs, user, room_id, event_id.as_str()).await?;

    let mut tx = hs.db().begin().await?;
    let position = streams::next_position(&mut tx, Stream::AccountData).await?;
    let new_position = stream_ordering(&mut tx, event_id.as_str()).await?;
    let current = account_data::get(&mut *tx, user, room_id.as_str(), FULLY_READ).await?;
    let current_event = current
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|c| c.get("event_id").and_then(Value::as_str).map(str::to_owned));
    if let Some(current_event) = current_event {
        if current_event == event_id.as_str() {
            return Ok(());
        }
        match (stream_ordering(&mut tx, &current_event).await?, new_position) {
            (Some(current), Some(new)) if current > new => return Ok(()),
            _ => {}
        }
    }
    let content = json!({ "event_id": event_id }).to_string();
    account_data::put(&mut tx, user, room_id.as_str(), FULLY_READ, &content, position).await?;
    tx.commit().await?;
    hs.notifier().wake_users([user]);
    Ok(())
}

/// Fails with 403 unless `user` is joined to `room_id`.
async fn ensure_joined(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<()> {
    match membership_of(hs, room_id, user).await?.as_deref() {
        Some("join") => Ok(()),
        _ => Err(Error::forbidden("You are not joined to this room")),
    }
}

/// An event's position in the room event stream (`None` for outliers and unknown events).
async fn stream_ordering(conn: &mut Conn, event_id: &str) -> Result<Option<i64>> {
    Ok(events::get(conn, event_id).await?.and_then(|row| row.stream_ordering))
}
