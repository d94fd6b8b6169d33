//! Membership changes (spec: Client-Server API › Room membership): join, invite, leave, kick,
//! ban, unban, forget. Each is an `m.room.member` event the auth rules decide on.

use ruma::{OwnedEventId, OwnedServerName, RoomId, UserId, events::TimelineEventType};
use serde_json::{Map, Value, json};

use super::{NewEvent, append::send, restricted};
use crate::{
    Error, Homeserver, Result,
    accounts::profile,
    storage::{rooms, state},
};

/// The target's current membership in the room, if any.
pub async fn membership_of(hs: &Homeserver, room_id: &RoomId, user_id: &UserId) -> Result<Option<String>> {
    Ok(state::membership(hs.db().pool(), room_id, user_id.as_str()).await?)
}

/// Joins `user` to a room. Extra content (e.g. `reason`) is kept; display name and avatar come
/// from the profile unless given. Joining again without changes is a no-op. A room no member
/// of this server is joined to is joined over federation, through `via` and the server of its
/// ID (when it names one).
pub async fn join(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    extra: Map<String, Value>,
    via: &[OwnedServerName],
) -> Result<OwnedEventId> {
    if let Some(remote) = hs.remote_rooms()
        && !has_local_member(hs, room_id).await?
    {
        let inviter = super::remote_invite::inviter_server(hs, room_id, user).await?;
        let mut servers: Vec<OwnedServerName> =
            via.iter().cloned().chain(inviter).chain(room_id.server_name().map(ToOwned::to_owned)).collect();
        servers.retain(|server| server != hs.server_name());
        servers.dedup();
        if !servers.is_empty() {
            let mut content = extra;
            with_profile(hs, user, &mut content).await;
            return remote.join(user, room_id, &servers, content).await;
        }
    }
    if extra.is_empty() && membership_of(hs, room_id, user).await?.as_deref() == Some("join") {
        let current =
            state::current_event_id(hs.db().pool(), room_id, "m.room.member", user.as_str()).await?;
        if let Some(id) = current.and_then(|id| OwnedEventId::try_from(id).ok()) {
            return Ok(id);
        }
    }
    let mut content = extra;
    content.insert("membership".to_owned(), json!("join"));
    if !matches!(membership_of(hs, room_id, user).await?.as_deref(), Some("join" | "invite"))
        && let Some(authoriser) = restricted::authoriser(hs, user, room_id).await?
    {
        content.insert("join_authorised_via_users_server".to_owned(), json!(authoriser));
    }
    with_profile(hs, user, &mut content).await;
    member_event(hs, user, room_id, user, Value::Object(content)).await
}

/// Whether a user of this server is joined to the room (so it can build the join itself).
pub async fn has_local_member(hs: &Homeserver, room_id: &RoomId) -> Result<bool> {
    Ok(state::has_joined_member_of(hs.db().pool(), room_id, hs.server_name()).await?)
}

/// Knocks on a room (join rule `knock` or `knock_restricted`, room version 7+; the auth rules
/// decide). Display name and avatar come from the profile. A room no local user is in is
/// knocked on over federation, through `via` and the server of its ID.
pub async fn knock(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    reason: Option<&str>,
    via: &[OwnedServerName],
) -> Result<OwnedEventId> {
    let mut content = json!({ "membership": "knock" });
    add_reason(&mut content, reason);
    if let Value::Object(content) = &mut content {
        with_profile(hs, user, content).await;
    }
    // A room no local user is in: knock through a server in it, and keep what it answered.
    if let Some(remote) = hs.remote_rooms()
        && !has_local_member(hs, room_id).await?
    {
        let mut servers: Vec<OwnedServerName> =
            via.iter().cloned().chain(room_id.server_name().map(ToOwned::to_owned)).collect();
        servers.retain(|server| server != hs.server_name());
        if let (false, Value::Object(content)) = (servers.is_empty(), content.clone()) {
            let (version, knock, stripped) = remote.knock(user, room_id, &servers, content).await?;
            super::remote_invite::record(hs, &version, &knock, &stripped).await?;
            return Ok(knock.event_id);
        }
    }
    if rooms::version(hs.db().pool(), room_id).await?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    member_event(hs, user, room_id, user, content).await
}

/// Fills in the display name and avatar from the user's profile unless already given.
async fn with_profile(hs: &Homeserver, user: &UserId, content: &mut Map<String, Value>) {
    let me = profile::get(hs, user).await.unwrap_or_default();
    if let Some(name) = me.displayname {
        content.entry("displayname").or_insert(json!(name));
    }
    if let Some(url) = me.avatar_url {
        content.entry("avatar_url").or_insert(json!(url));
    }
}

/// Invites `target`.
pub async fn invite(
    hs: &Homeserver,
    sender: &UserId,
    room_id: &RoomId,
    target: &UserId,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    if sender == target {
        return Err(Error::forbidden("You cannot invite yourself"));
    }
    let mut content = json!({ "membership": "invite" });
    add_reason(&mut content, reason);
    if target.server_name() != hs.server_name() {
        return super::remote_invite::invite(hs, sender, room_id, target, content).await;
    }
    member_event(hs, sender, room_id, target, content).await
}

/// Leaves a room (or rejects an invite, or withdraws a knock).
pub async fn leave(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    // An invite to a room no local user is in is rejected through the inviting server.
    if let Some(remote) = hs.remote_rooms()
        && let Some(inviter) = super::remote_invite::inviter_server(hs, room_id, user).await?
        && !has_local_member(hs, room_id).await?
    {
        let (version, leave) = remote.reject_invite(user, room_id, &[inviter]).await?;
        super::remote_invite::record(hs, &version, &leave, &[]).await?;
        return Ok(leave.event_id);
    }
    if rooms::version(hs.db().pool(), room_id).await?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    let mut content = json!({ "membership": "leave" });
    add_reason(&mut content, reason);
    member_event(hs, user, room_id, user, content).await
}

/// Kicks, bans or unbans `target`: `membership` is `leave` (kick, unban) or `ban`.
pub async fn moderate(
    hs: &Homeserver,
    sender: &UserId,
    room_id: &RoomId,
    target: &UserId,
    membership: &str,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    let current = membership_of(hs, room_id, target).await?;
    if membership == "leave" && sender != target && current.as_deref().is_none_or(|m| m == "leave") {
        return Err(Error::forbidden("The user is not in the room"));
    }
    let mut content = json!({ "membership": membership });
    add_reason(&mut content, reason);
    member_event(hs, sender, room_id, target, content).await
}

/// Forgets a room the user has left: it disappears from their sync and history.
pub async fn forget(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<()> {
    match membership_of(hs, room_id, user).await?.as_deref() {
        Some("join" | "invite" | "knock") => Err(Error::bad_request("Leave the room before forgetting it")),
        _ => {
            rooms::forget(hs.db().pool(), user, room_id).await?;
            hs.room_cache().invalidate_readable();
            Ok(())
        }
    }
}

async fn member_event(
    hs: &Homeserver,
    sender: &UserId,
    room_id: &RoomId,
    target: &UserId,
    content: Value,
) -> Result<OwnedEventId> {
    let event = NewEvent::state(TimelineEventType::RoomMember, target.as_str(), content);
    Ok(send(hs, room_id, sender, &event).await?.event_id)
}

fn add_reason(content: &mut Value, reason: Option<&str>) {
    if let Some(reason) = reason {
        content["reason"] = json!(reason);
    }
}
