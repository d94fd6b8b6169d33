//! Room creation (spec: Client-Server API › Creation): the create event, the creator's join,
//! power levels, the preset's rules, initial state, name, topic, alias and invites — all in one
//! transaction, so a room exists completely or not at all.

use rand::{Rng, distributions::Alphanumeric};
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomVersionId, UserId, events::TimelineEventType};
use serde_json::{Map, Value, json};

use super::{NewEvent, RoomHead, append::append};
use crate::{
    Error, Homeserver, Result,
    accounts::profile,
    storage::{aliases, rooms},
    time::now_ms,
};

/// The room presets of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Invite-only, history shared, guests may join.
    PrivateChat,
    /// As private, and every invitee gets the creator's power.
    TrustedPrivateChat,
    /// Anyone may join, history shared, no guests.
    PublicChat,
}

/// What `createRoom` asked for, already parsed at the edge.
#[derive(Clone, Debug, Default)]
pub struct CreateRoom {
    /// Preset; defaults from `public`.
    pub preset: Option<Preset>,
    /// Whether the room is published in the room directory.
    pub public: bool,
    /// Room version; the server default when `None`.
    pub room_version: Option<RoomVersionId>,
    /// Extra `m.room.create` content.
    pub creation_content: Option<Map<String, Value>>,
    /// Overrides merged into the default power levels.
    pub power_level_content_override: Option<Map<String, Value>>,
    /// State events `(type, state_key, content)` sent after the preset's.
    pub initial_state: Vec<(String, String, Value)>,
    /// `m.room.name`.
    pub name: Option<String>,
    /// `m.room.topic`.
    pub topic: Option<String>,
    /// Local alias localpart.
    pub room_alias_name: Option<String>,
    /// Users to invite.
    pub invite: Vec<OwnedUserId>,
    /// Whether invites are direct chats.
    pub is_direct: bool,
}

/// Creates a room and returns its ID.
pub async fn create_room(hs: &Homeserver, creator: &UserId, request: CreateRoom) -> Result<OwnedRoomId> {
    let version = request.room_version.clone().unwrap_or_else(|| hs.config().rooms.default_version.clone());
    let preset =
        request.preset.unwrap_or(if request.public { Preset::PublicChat } else { Preset::PrivateChat });
    let alias = match &request.room_alias_name {
        Some(name) => Some(local_alias(hs, name)?),
        None => None,
    };
    let placeholder = OwnedRoomId::try_from(format!("!{}:{}", random_localpart(), hs.server_name()))
        .map_err(|e| Error::Internal(anyhow::anyhow!("room ID: {e}")))?;
    let mut head = RoomHead::empty(placeholder, version.clone())?;
    let v12_creators = head.rules.authorization.explicitly_privilege_room_creators;

    let mut create_content = request.creation_content.clone().unwrap_or_default();
    create_content.remove("room_version");
    create_content.insert("room_version".to_owned(), json!(version.as_str()));
    if head.rules.authorization.use_room_create_sender {
        create_content.remove("creator");
    } else {
        create_content.insert("creator".to_owned(), json!(creator));
    }
    if v12_creators && preset == Preset::TrustedPrivateChat && !request.invite.is_empty() {
        create_content.insert("additional_creators".to_owned(), json!(request.invite));
    }

    let mut tx = hs.db().begin().await?;
    let conn = &mut tx;
    append(
        hs,
        conn,
        &mut head,
        creator,
        &NewEvent::state(TimelineEventType::RoomCreate, "", Value::Object(create_content)),
    )
    .await?;
    let room_id = head.room_id.clone();
    rooms::insert(conn, &room_id, &version, creator, now_ms()).await?;
    if request.public {
        rooms::set_public(&mut **conn, &room_id, true).await?;
    }

    let me = profile::get(hs, creator).await.unwrap_or_default();
    let mut join = json!({ "membership": "join" });
    if let Some(name) = me.displayname {
        join["displayname"] = json!(name);
    }
    if let Some(url) = me.avatar_url {
        join["avatar_url"] = json!(url);
    }
    append(
        hs,
        conn,
        &mut head,
        creator,
        &NewEvent::state(TimelineEventType::RoomMember, creator.as_str(), join),
    )
    .await?;

    let power_levels = power_levels(creator, v12_creators, preset, &request);
    append(
        hs,
        conn,
        &mut head,
        creator,
        &NewEvent::state(TimelineEventType::RoomPowerLevels, "", power_levels),
    )
    .await?;

    if let Some(alias) = &alias {
        if !aliases::insert(&mut **conn, alias, &room_id, creator, now_ms()).await? {
            return Err(Error::matrix(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::RoomInUse,
                "Room alias already taken",
            ));
        }
        let content = json!({ "alias": alias });
        append(
            hs,
            conn,
            &mut head,
            creator,
            &NewEvent::state(TimelineEventType::RoomCanonicalAlias, "", content),
        )
        .await?;
    }

    let join_rule = if preset == Preset::PublicChat { "public" } else { "invite" };
    let guest_access = if preset == Preset::PublicChat { "forbidden" } else { "can_join" };
    let preset_state = [
        (TimelineEventType::RoomJoinRules, json!({ "join_rule": join_rule })),
        (TimelineEventType::RoomHistoryVisibility, json!({ "history_visibility": "shared" })),
        (TimelineEventType::RoomGuestAccess, json!({ "guest_access": guest_access })),
    ];
    for (kind, content) in preset_state {
        let overridden = request.initial_state.iter().any(|(k, s, _)| *k == kind.to_string() && s.is_empty());
        if !overridden {
            append(hs, conn, &mut head, creator, &NewEvent::state(kind, "", content)).await?;
        }
    }
    for (kind, state_key, content) in &request.initial_state {
        let event = NewEvent::state(kind.as_str(), state_key.clone(), content.clone());
        append(hs, conn, &mut head, creator, &event).await?;
    }
    if let Some(name) = &request.name {
        append(
            hs,
            conn,
            &mut head,
            creator,
            &NewEvent::state(TimelineEventType::RoomName, "", json!({ "name": name })),
        )
        .await?;
    }
    if let Some(topic) = &request.topic {
        let content = json!({ "topic": topic });
        append(hs, conn, &mut head, creator, &NewEvent::state(TimelineEventType::RoomTopic, "", content))
            .await?;
    }
    for invitee in &request.invite {
        let mut content = json!({ "membership": "invite" });
        if request.is_direct {
            content["is_direct"] = json!(true);
        }
        let event = NewEvent::state(TimelineEventType::RoomMember, invitee.as_str(), content);
        append(hs, conn, &mut head, creator, &event).await?;
    }
    tx.commit().await?;
    tracing::info!(room_id = %room_id, creator = %creator, version = %version, "created room");
    Ok(room_id)
}

fn power_levels(creator: &UserId, v12_creators: bool, preset: Preset, request: &CreateRoom) -> Value {
    let mut users = Map::new();
    if !v12_creators {
        users.insert(creator.to_string(), json!(100));
        if preset == Preset::TrustedPrivateChat {
            for invitee in &request.invite {
                users.insert(invitee.to_string(), json!(100));
            }
        }
    }
    let mut content = json!({
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "historical": 100,
    });
    if let (Some(overrides), Value::Object(map)) = (&request.power_level_content_override, &mut content) {
        for (key, value) in overrides {
            map.insert(key.clone(), value.clone());
        }
    }
    content
}

/// `#name:our.server`, validated.
pub fn local_alias(hs: &Homeserver, name: &str) -> Result<OwnedRoomAliasId> {
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Error::invalid_param("Invalid room alias name"));
    }
    OwnedRoomAliasId::try_from(format!("#{name}:{}", hs.server_name()))
        .map_err(|e| Error::invalid_param(format!("Invalid room alias: {e}")))
}

fn random_localpart() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(18).map(char::from).collect()
}
