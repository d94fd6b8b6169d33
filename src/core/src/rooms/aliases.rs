//! Room aliases (spec: Client-Server API › Room aliases): creating, resolving and deleting local
//! aliases, listing a room's aliases, and checking the aliases an `m.room.canonical_alias` event
//! names.

use std::collections::HashSet;

use http::StatusCode;
use ruma::{
    OwnedRoomAliasId, OwnedRoomId, RoomAliasId, RoomId, api::error::ErrorKind, events::StateEventType,
};
use serde_json::Value;

use super::{RoomHead, auth, power, timeline};
use crate::{
    Error, Homeserver, Result,
    accounts::User,
    storage::{Conn, aliases, rooms, state},
    time::now_ms,
};

/// The room an alias points at, or 404. Aliases of other servers would need a federation
/// query, which core does not make: they are not found here.
pub async fn resolve(hs: &Homeserver, alias: &RoomAliasId) -> Result<OwnedRoomId> {
    aliases::get(hs.db().pool(), alias)
        .await?
        .map(|(room_id, _)| room_id)
        .ok_or_else(|| Error::not_found(format!("Room alias {alias} not found")))
}

/// Points a new local alias at a room the user is joined to. 409 `M_UNKNOWN` if it exists.
pub async fn create(hs: &Homeserver, user: &User, alias: &RoomAliasId, room_id: &RoomId) -> Result<()> {
    ensure_local(hs, alias)?;
    if rooms::version(hs.db().pool(), room_id).await?.is_none() {
        return Err(Error::not_found("Unknown room"));
    }
    let joined = state::membership(hs.db().pool(), room_id, user.user_id.as_str()).await?;
    if joined.as_deref() != Some("join") && !user.is_admin {
        return Err(Error::forbidden("You must be in the room to create an alias for it"));
    }
    if !aliases::insert(hs.db().pool(), alias, room_id, &user.user_id, now_ms()).await? {
        return Err(Error::matrix(
            StatusCode::CONFLICT,
            ErrorKind::Unknown,
            format!("Room alias {alias} already exists"),
        ));
    }
    Ok(())
}

/// Deletes a local alias. Allowed to its creator, server admins, and users with the power to
/// send `m.room.canonical_alias` in its room (the spec leaves this check to the server).
pub async fn delete(hs: &Homeserver, user: &User, alias: &RoomAliasId) -> Result<()> {
    ensure_local(hs, alias)?;
    let (room_id, creator) = aliases::get(hs.db().pool(), alias)
        .await?
        .ok_or_else(|| Error::not_found(format!("Room alias {alias} not found")))?;
    let allowed = creator == user.user_id.as_str()
        || user.is_admin
        || power::can_send_state(hs, &room_id, &user.user_id, StateEventType::RoomCanonicalAlias).await?;
    if !allowed {
        return Err(Error::forbidden("You may not delete this alias"));
    }
    if !aliases::delete(hs.db().pool(), alias).await? {
        return Err(Error::not_found(format!("Room alias {alias} not found")));
    }
    Ok(())
}

/// The local aliases of a room, for users who may read it.
pub async fn local_aliases(hs: &Homeserver, user: &User, room_id: &RoomId) -> Result<Vec<OwnedRoomAliasId>> {
    timeline::ensure_can_read(hs, &user.user_id, room_id).await?;
    Ok(aliases::for_room(hs.db().pool(), room_id).await?)
}

/// 400 `M_INVALID_PARAM` for aliases of other servers: a server only maintains its own.
fn ensure_local(hs: &Homeserver, alias: &RoomAliasId) -> Result<()> {
    if alias.server_name() != hs.server_name() {
        return Err(Error::invalid_param("Room alias must be on this server"));
    }
    Ok(())
}

/// Checks the content of a local `m.room.canonical_alias` event about to be sent on `head`:
/// `alias` and `alt_aliases` must be well-formed (else 400 `M_INVALID_PARAM`), and every alias
/// not already in the current event must point at this room (else 400 `M_BAD_ALIAS`). Aliases
/// of other servers cannot be resolved without federation and are taken on trust.
pub async fn check_canonical_alias(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    content: &Value,
) -> Result<()> {
    let named = named_aliases(content)?;
    let previous = match head.state_event_id("m.room.canonical_alias", "") {
        Some(id) => {
            let events = auth::load(hs, conn, head, &[id]).await?;
            events
                .values()
                .next()
                .and_then(|pdu| named_aliases(&pdu.content_value()).ok())
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let previous: HashSet<&OwnedRoomAliasId> = previous.iter().collect();
    for alias in named.iter().filter(|a| !previous.contains(a) && a.server_name() == hs.server_name()) {
        let target = aliases::get(&mut *conn, alias).await?.map(|(room_id, _)| room_id);
        if target.as_deref() != Some(&*head.room_id) {
            return Err(Error::matrix(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadAlias,
                format!("Room alias {alias} does not point to this room"),
            ));
        }
    }
    Ok(())
}

/// The aliases an `m.room.canonical_alias` content names; `M_INVALID_PARAM` if malformed.
fn named_aliases(content: &Value) -> Result<Vec<OwnedRoomAliasId>> {
    let parse = |value: &Value| {
        value
            .as_str()
            .and_then(|s| OwnedRoomAliasId::try_from(s).ok())
            .ok_or_else(|| Error::invalid_param(format!("Invalid room alias {value}")))
    };
    let mut named = Vec::new();
    // An absent, null or empty `alias` means the room has no canonical alias.
    match content.get("alias") {
        None | Some(Value::Null) => {}
        Some(Value::String(alias)) if alias.is_empty() => {}
        Some(alias) => named.push(parse(alias)?),
    }
    match content.get("alt_aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Array(alt)) => {
            for alias in alt {
                named.push(parse(alias)?);
            }
        }
        Some(_) => return Err(Error::invalid_param("alt_aliases must be a list of room aliases")),
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_alias_content_names_alias_and_alt_aliases() {
        let content = json!({ "alias": "#a:x.org", "alt_aliases": ["#b:x.org", "#☃:y.org"] });
        let named = named_aliases(&content).expect("well-formed");
        let named: Vec<&str> = named.iter().map(|a| a.as_str()).collect();
        assert_eq!(named, ["#a:x.org", "#b:x.org", "#☃:y.org"]);
        assert!(named_aliases(&json!({})).expect("empty content").is_empty());
        assert!(named_aliases(&json!({ "alias": "" })).expect("no alias").is_empty());
    }

    #[test]
    fn malformed_canonical_aliases_are_invalid_params() {
        for content in [
            json!({ "alias": "no-hash:x.org" }),
            json!({ "alias": 3 }),
            json!({ "alt_aliases": "#a:x.org" }),
            json!({ "alt_aliases": ["#a:x.org", "nope"] }),
        ] {
            let error = named_aliases(&content).expect_err("malformed");
            assert_eq!(error.kind(), ErrorKind::InvalidParam, "{content}");
        }
    }
}
