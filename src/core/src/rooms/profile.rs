//! Profile changes as rooms see them (spec: Client-Server API › Profiles › Events on change of
//! profile information): a new display name or avatar is stored, then every room the user is
//! joined to gets a fresh `m.room.member` join event carrying it.
//!
//! This lives in `rooms` rather than `accounts` because rooms already depend on accounts (a
//! join reads the profile); the reverse call would make the two modules depend on each other.

use ruma::{RoomId, UserId, events::TimelineEventType};
use serde_json::{Value, json};

use super::{NewEvent, append::RoomWriter};
use crate::{
    Homeserver, Result,
    accounts::profile::{self, Profile},
    storage::{events, rooms, state},
};

/// Sets `target`'s display name on behalf of `actor` and updates their rooms.
pub async fn set_displayname(
    hs: &Homeserver,
    actor: &UserId,
    target: &UserId,
    value: Option<&str>,
) -> Result<()> {
    profile::set_displayname(hs, actor, target, value).await?;
    propagate(hs, target).await
}

/// Sets `target`'s avatar URL on behalf of `actor` and updates their rooms.
pub async fn set_avatar_url(
    hs: &Homeserver,
    actor: &UserId,
    target: &UserId,
    value: Option<&str>,
) -> Result<()> {
    profile::set_avatar_url(hs, actor, target, value).await?;
    propagate(hs, target).await
}

/// Sends a new join event with the user's current profile into each room they are joined to
/// whose member event differs from it. A room that refuses (its auth rules changed under us)
/// is logged and skipped: the profile itself has changed either way.
pub async fn propagate(hs: &Homeserver, user: &UserId) -> Result<()> {
    let current = profile::get(hs, user).await?;
    for room_id in rooms::rooms_with_membership(hs.db().pool(), user, "join").await? {
        if let Err(error) = update_member_event(hs, &room_id, user, &current).await {
            tracing::warn!(room_id = %room_id, user_id = %user, error = %error, "profile not propagated to room");
        }
    }
    Ok(())
}

async fn update_member_event(
    hs: &Homeserver,
    room_id: &RoomId,
    user: &UserId,
    current: &Profile,
) -> Result<()> {
    let mut writer = RoomWriter::open(hs, room_id).await?;
    // Read the member event under the room's lock, so a leave cannot slip in between.
    let Some(event_id) =
        state::current_event_id(&mut *writer.tx, room_id, "m.room.member", user.as_str()).await?
    else {
        return Ok(());
    };
    let Some(row) = events::get(&mut *writer.tx, &event_id).await? else { return Ok(()) };
    let mut content = serde_json::from_str::<Value>(&row.json)
        .ok()
        .and_then(|mut event| event.get_mut("content").map(Value::take))
        .unwrap_or_else(|| json!({}));
    if content.get("membership").and_then(Value::as_str) != Some("join") {
        return Ok(());
    }
    let shown = |key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
    if shown("displayname") == current.displayname && shown("avatar_url") == current.avatar_url {
        return Ok(());
    }
    set_or_remove(&mut content, "displayname", current.displayname.as_deref());
    set_or_remove(&mut content, "avatar_url", current.avatar_url.as_deref());
    // A reason belongs to the membership change that gave it, not to a profile update.
    if let Some(object) = content.as_object_mut() {
        object.remove("reason");
    }
    let event = NewEvent::state(TimelineEventType::RoomMember, user.as_str(), content);
    writer.append(user, &event).await?;
    writer.commit().await
}

fn set_or_remove(content: &mut Value, key: &str, value: Option<&str>) {
    if let Some(object) = content.as_object_mut() {
        match value {
            Some(value) => object.insert(key.to_owned(), json!(value)),
            None => object.remove(key),
        };
    }
}
