//! Room upgrades (spec: Client-Server API › Room upgrades): a replacement room in the new
//! version whose create event names its predecessor, the transferable state copied over, local
//! aliases moved, then a tombstone in the old room and its power levels restricted. Everything
//! happens in one transaction under the old room's write lock: an upgrade the user may not make
//! leaves nothing behind.

use rand::{Rng, distributions::Alphanumeric};
use ruma::{
    OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId,
    events::{StateEventType, TimelineEventType},
};
use serde_json::{Map, Value, json};

use super::{NewEvent, RoomHead, append::RoomWriter, append::append, head::rules_for, power, timeline};
use crate::{
    Error, Homeserver, Result,
    accounts::profile,
    storage::{aliases, rooms, state},
    time::now_ms,
};

/// State copied to the replacement room, in this order (the spec's recommended list; power
/// levels are handled apart, canonical alias is moved).
const TRANSFERRED: [&str; 8] = [
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
];

/// Upgrades `old_room` to `new_version` and returns the replacement room's ID.
/// `additional_creators` apply to versions that have them (v12).
pub async fn upgrade(
    hs: &Homeserver,
    user: &UserId,
    old_room: &RoomId,
    new_version: RoomVersionId,
    additional_creators: Vec<OwnedUserId>,
) -> Result<OwnedRoomId> {
    rules_for(&new_version)?;
    let mut writer = RoomWriter::open(hs, old_room).await?;
    let old_head = RoomHead::load(&mut writer.tx, old_room).await?;
    if state::membership(&mut *writer.tx, old_room, user.as_str()).await?.as_deref() != Some("join") {
        return Err(Error::forbidden("You are not in this room"));
    }
    let old_levels = power::levels(hs, &mut writer.tx, &old_head).await?;
    if !old_levels.user_can_send_state(user, StateEventType::RoomTombstone) {
        return Err(Error::forbidden("You may not upgrade this room"));
    }
    let state_content = async |kind: &str| -> Result<Option<Value>> {
        let pdu = timeline::current_state_event(hs, old_room, kind, "").await?;
        Ok(pdu.map(|p| p.content_value()).filter(|c| c.as_object().is_some_and(|o| !o.is_empty())))
    };
    let old_create = state_content("m.room.create").await?.unwrap_or_default();
    let old_pl = state_content("m.room.power_levels").await?;
    let old_alias = state_content("m.room.canonical_alias").await?;
    let mut copied = Vec::new();
    for kind in TRANSFERRED {
        if let Some(content) = state_content(kind).await? {
            copied.push((kind, content));
        }
    }

    // The replacement room.
    let placeholder = OwnedRoomId::try_from(format!("!{}:{}", random_localpart(), hs.server_name()))
        .map_err(|e| Error::Internal(anyhow::anyhow!("room ID: {e}")))?;
    let mut head = RoomHead::empty(placeholder, new_version.clone())?;
    let rules = head.rules.authorization.clone();
    let mut create = Map::new();
    create.insert("room_version".to_owned(), json!(new_version.as_str()));
    let last_event = old_head.prev_events.first().map(|(_, id)| id.clone());
    create.insert("predecessor".to_owned(), json!({ "room_id": old_room, "event_id": last_event }));
    if let Some(room_type) = old_create.get("type") {
        create.insert("type".to_owned(), room_type.clone());
    }
    if !rules.use_room_create_sender {
        create.insert("creator".to_owned(), json!(user));
    }
    let additional_creators: Vec<OwnedUserId> = if rules.additional_room_creators {
        additional_creators.into_iter().filter(|c| c != user).collect()
    } else {
        Vec::new()
    };
    if !additional_creators.is_empty() {
        create.insert("additional_creators".to_owned(), json!(additional_creators));
    }
    let tx = &mut writer.tx;
    let create_event = NewEvent::state(TimelineEventType::RoomCreate, "", Value::Object(create));
    append(hs, tx, &mut head, user, &create_event).await?;
    let new_room = head.room_id.clone();
    rooms::insert(tx, &new_room, &new_version, user, now_ms()).await?;

    let me = profile::get(hs, user).await.unwrap_or_default();
    let mut join = json!({ "membership": "join" });
    if let Some(name) = me.displayname {
        join["displayname"] = json!(name);
    }
    if let Some(url) = me.avatar_url {
        join["avatar_url"] = json!(url);
    }
    append(hs, tx, &mut head, user, &NewEvent::state(TimelineEventType::RoomMember, user.as_str(), join))
        .await?;

    // Power levels: the old room's, fitted to the new version's view of creators. While the
    // state is copied the upgrading user may need more power than the copy gives them.
    let mut creators = vec![user.to_owned()];
    creators.extend(additional_creators);
    let final_pl =
        fit_power_levels(old_pl.clone(), user, &creators, rules.explicitly_privilege_room_creators);
    let working_pl =
        (!rules.explicitly_privilege_room_creators).then(|| raised_for(&final_pl, user)).flatten();
    let pl_event = |content: &Value| NewEvent::state(TimelineEventType::RoomPowerLevels, "", content.clone());
    append(hs, tx, &mut head, user, &pl_event(working_pl.as_ref().unwrap_or(&final_pl))).await?;
    for (kind, content) in copied {
        append(hs, tx, &mut head, user, &NewEvent::state(kind, "", content)).await?;
    }
    // Local aliases move first: the canonical alias may only name aliases of its room. One
    // that cannot be carried over (an alias pointing elsewhere) is left behind, not fatal.
    aliases::repoint(&mut **tx, old_room, &new_room).await?;
    if let Some(alias) = &old_alias {
        let event = NewEvent::state(TimelineEventType::RoomCanonicalAlias, "", alias.clone());
        if let Err(e) = append(hs, tx, &mut head, user, &event).await {
            if e.status() != http::StatusCode::BAD_REQUEST {
                return Err(e);
            }
            tracing::info!(room_id = %new_room, error = %e, "canonical alias not carried over");
        }
    }
    if working_pl.is_some() {
        append(hs, tx, &mut head, user, &pl_event(&final_pl)).await?;
    }
    if rooms::is_public(&mut **tx, old_room).await? == Some(true) {
        rooms::set_public(&mut **tx, &new_room, true).await?;
        rooms::set_public(&mut **tx, old_room, false).await?;
    }

    // The old room: tombstone (which the user must be allowed to send), then, where the user
    // may, the canonical alias removed and ordinary users silenced.
    let tombstone = json!({ "body": "This room has been replaced", "replacement_room": new_room });
    writer.append(user, &NewEvent::state(TimelineEventType::RoomTombstone, "", tombstone)).await?;
    if old_alias.is_some() {
        let event = NewEvent::state(TimelineEventType::RoomCanonicalAlias, "", json!({}));
        allow_forbidden(writer.append(user, &event).await)?;
    }
    if let Some(restricted) = restrict(old_pl.as_ref()) {
        allow_forbidden(writer.append(user, &pl_event(&restricted)).await)?;
    }
    writer.commit().await?;
    tracing::info!(old = %old_room, new = %new_room, version = %new_version, "upgraded room");
    Ok(new_room)
}

/// The old room's power levels for the new room: creators leave `users` where the version
/// privileges them, and otherwise keep at least 100 (they may have held power only as v12
/// creators). Without old power levels, the defaults of a new room.
fn fit_power_levels(old: Option<Value>, user: &UserId, creators: &[OwnedUserId], privileged: bool) -> Value {
    let mut content = old.unwrap_or_else(|| json!({ "users": {} }));
    if !content.get("users").is_some_and(Value::is_object) {
        content["users"] = json!({});
    }
    if let Some(users) = content.get_mut("users").and_then(Value::as_object_mut) {
        if privileged {
            for creator in creators {
                users.remove(creator.as_str());
            }
        } else {
            let level = users.get(user.as_str()).and_then(Value::as_i64).unwrap_or(0);
            users.insert(user.to_string(), json!(level.max(100)));
        }
    }
    content
}

/// `final_pl` with the user raised to the highest level it mentions, if they are below it.
fn raised_for(final_pl: &Value, user: &UserId) -> Option<Value> {
    let mut levels: Vec<i64> =
        ["ban", "kick", "redact", "invite", "events_default", "state_default", "users_default"]
            .iter()
            .filter_map(|key| final_pl.get(*key).and_then(Value::as_i64))
            .collect();
    for map in ["events", "users"] {
        if let Some(values) = final_pl.get(map).and_then(Value::as_object) {
            levels.extend(values.values().filter_map(Value::as_i64));
        }
    }
    let needed = levels.into_iter().max().unwrap_or(100).max(100);
    let own = final_pl["users"].get(user.as_str()).and_then(Value::as_i64).unwrap_or(0);
    (own < needed).then(|| {
        let mut raised = final_pl.clone();
        raised["users"][user.as_str()] = json!(needed);
        raised
    })
}

/// The old room's power levels with sending and inviting raised to `max(50, users_default + 1)`
/// (spec step 6); `None` when they already are (or the room has none to change).
fn restrict(old: Option<&Value>) -> Option<Value> {
    let old = old?;
    let level = |key: &str| old.get(key).and_then(Value::as_i64).unwrap_or(0);
    let restricted = 50.max(level("users_default") + 1);
    if level("events_default") >= restricted && level("invite") >= restricted {
        return None;
    }
    let mut content = old.clone();
    content["events_default"] = json!(level("events_default").max(restricted));
    content["invite"] = json!(level("invite").max(restricted));
    Some(content)
}

/// Steps the spec makes best-effort: a 403 from the auth rules is not a failure.
fn allow_forbidden<T>(result: Result<T>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.status() == http::StatusCode::FORBIDDEN => Ok(()),
        Err(e) => Err(e),
    }
}

fn random_localpart() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(18).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[test]
    fn v12_creators_leave_the_users_map_and_older_versions_keep_them_powerful() {
        let alice = user_id!("@alice:hs");
        let old = json!({ "users": { "@alice:hs": 100, "@bob:hs": 50 }, "events_default": 0 });
        let v12 = fit_power_levels(Some(old.clone()), alice, &[alice.to_owned()], true);
        assert_eq!(v12["users"], json!({ "@bob:hs": 50 }));
        let from_v12 = fit_power_levels(Some(json!({ "users": { "@bob:hs": 50 } })), alice, &[], false);
        assert_eq!(from_v12["users"]["@alice:hs"], 100);
    }

    #[test]
    fn the_old_room_is_restricted_to_moderators_once() {
        let old = json!({ "users_default": 0, "events_default": 0, "invite": 0, "users": {} });
        let restricted = restrict(Some(&old)).expect("restricted");
        assert_eq!(
            (restricted["events_default"].clone(), restricted["invite"].clone()),
            (json!(50), json!(50))
        );
        assert!(restrict(Some(&restricted)).is_none());
        let generous = json!({ "users_default": 60 });
        assert_eq!(restrict(Some(&generous)).expect("restricted")["events_default"], 61);
    }

    #[test]
    fn the_upgrader_is_raised_only_while_below_the_highest_level() {
        let alice = user_id!("@alice:hs");
        let pl = json!({ "users": { "@alice:hs": 100 }, "events": { "m.room.tombstone": 150 } });
        assert_eq!(raised_for(&pl, alice).expect("raised")["users"]["@alice:hs"], 150);
        let pl = json!({ "users": { "@alice:hs": 100 }, "state_default": 50 });
        assert!(raised_for(&pl, alice).is_none());
    }
}
