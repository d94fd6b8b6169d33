//! Queuing local events for the other servers in their room (spec: Server-Server API ›
//! Transactions): each goes into the federation outbox, per destination, in the transaction
//! that appends it, so that nothing is lost across restarts; the federation sender drains it.

use std::sync::Arc;

use imbl::ordmap::DiffItem;
use ruma::{OwnedRoomId, OwnedServerName, UserId, events::TimelineEventType};

use super::{Pdu, RoomHead};
use crate::{
    Homeserver, Result,
    storage::{Conn, WriteTx, device_lists, outbox, rooms},
    time::now_ms,
};

/// The servers other than ours with members joined to the room whose head is `head`, read in
/// the caller's transaction (so it sees the state the head describes) and cached until the
/// head's state map changes. A new map whose member entries of other servers are those of the
/// map last read for keeps that answer: a join of a local user to a big room compares the two
/// maps (which costs what changed) instead of reading every member.
pub async fn remote_servers(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &RoomHead,
) -> Result<Arc<Vec<OwnedServerName>>> {
    let ours = hs.server_name();
    let remote_member = |(kind, key): &(String, String)| {
        kind == "m.room.member" && UserId::parse(key.as_str()).is_ok_and(|user| user.server_name() != ours)
    };
    if let Some((state, servers)) = hs.room_cache().last_remote_servers(&head.room_id) {
        if Arc::ptr_eq(&state, &head.state) {
            return Ok(servers);
        }
        if !state.diff(&head.state).any(|item| remote_member(changed_key(&item))) {
            hs.room_cache().put_remote_servers(&head.room_id, head.state.clone(), servers.clone());
            return Ok(servers);
        }
    }
    // Only rooms with a member of another server need the query.
    let any_remote = head.state.keys().any(remote_member);
    let mut servers: Vec<OwnedServerName> = if any_remote {
        device_lists::joined_members(tx, &head.room_id)
            .await?
            .into_iter()
            .map(|user| user.server_name().to_owned())
            .filter(|server| server != ours)
            .collect()
    } else {
        Vec::new()
    };
    servers.sort_unstable();
    servers.dedup();
    let servers = Arc::new(servers);
    hs.room_cache().put_remote_servers(&head.room_id, head.state.clone(), servers.clone());
    Ok(servers)
}

/// The key of an entry that differs between two state maps.
fn changed_key<'a>(item: &DiffItem<'a, 'a, (String, String), (i64, String)>) -> &'a (String, String) {
    match item {
        DiffItem::Add(key, _) | DiffItem::Remove(key, _) | DiffItem::Update { new: (key, _), .. } => key,
    }
}

/// Queues `pdu`, a local event just appended on top of what is now `head`, for every other
/// server in the room, and for the server of a member event's target (an invitee, a kicked or
/// banned user, a user who left: they must learn of it even though no member of theirs is
/// joined any more).
pub async fn queue(hs: &Homeserver, tx: &mut WriteTx, head: &RoomHead, pdu: &Pdu) -> Result<()> {
    queue_except(hs, tx, head, pdu, None).await
}

/// [`queue`], but not for `except` (the server that handed us the event, which has it).
pub async fn queue_except(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &RoomHead,
    pdu: &Pdu,
    except: Option<&ruma::ServerName>,
) -> Result<()> {
    queue_many(hs, tx, &[(head, pdu)], except).await
}

/// [`queue`] for several events, each with the head it was appended on, in one statement (the
/// group commit's), and not for `except`.
pub async fn queue_many(
    hs: &Homeserver,
    tx: &mut WriteTx,
    events: &[(&RoomHead, &Pdu)],
    except: Option<&ruma::ServerName>,
) -> Result<()> {
    let mut destinations = Vec::with_capacity(events.len());
    for (head, pdu) in events {
        let servers = remote_servers(hs, tx, head).await?;
        let target = (pdu.kind == TimelineEventType::RoomMember)
            .then(|| pdu.state_key.as_deref().and_then(|key| UserId::parse(key).ok()))
            .flatten()
            .map(|user| user.server_name().to_owned())
            .filter(|server| server != hs.server_name() && !servers.contains(server));
        destinations.push((servers, target, pdu.event_id.as_str()));
    }
    let rows: Vec<(&str, &str)> = destinations
        .iter()
        .flat_map(|(servers, target, event_id)| {
            servers.iter().chain(target).map(|server| (server.as_str(), *event_id))
        })
        .filter(|(server, _)| except.is_none_or(|except| except.as_str() != *server))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    outbox::push_pdus(tx, &rows, now_ms()).await?;
    tx.queued_for_federation(rows.iter().map(|(destination, _)| *destination));
    Ok(())
}

/// Queues an EDU about `room_id` (its JSON: `edu_type` and `content`) for the other servers in
/// the room. A room known to have none costs no transaction.
pub async fn queue_edu(hs: &Homeserver, room_id: &ruma::RoomId, edu: &serde_json::Value) -> Result<()> {
    queue_edu_in(hs, &[room_id.to_owned()], edu).await
}

/// Queues an EDU about `user` (presence) for every other server sharing a room with them. Their
/// rooms come from the memberships sync keeps per user, so a syncing user costs no query.
pub async fn queue_user_edu(hs: &Homeserver, user: &UserId, edu: &serde_json::Value) -> Result<()> {
    let memberships = hs.sync_memberships().at(hs, user, hs.db().events().upto()).await?;
    let rooms: Vec<OwnedRoomId> = memberships
        .iter()
        .filter(|(membership, _)| membership == "join")
        .map(|(_, row)| row.room_id.clone())
        .collect();
    queue_edu_in(hs, &rooms, edu).await
}

/// Queues `edu` once for every server other than ours in any of `rooms`. Rooms known to have no
/// other server cost no transaction.
async fn queue_edu_in(hs: &Homeserver, rooms: &[OwnedRoomId], edu: &serde_json::Value) -> Result<()> {
    let cache = hs.room_cache();
    let all_local = rooms.iter().all(|room_id| {
        cache
            .head(room_id)
            .and_then(|head| cache.remote_servers(room_id, &head.state))
            .is_some_and(|servers| servers.is_empty())
    });
    if all_local {
        return Ok(());
    }
    let mut tx = hs.db().begin().await?;
    let mut servers: Vec<OwnedServerName> = Vec::new();
    for room_id in rooms {
        let head = RoomHead::current(hs, &mut tx, room_id).await?;
        servers.extend(remote_servers(hs, &mut tx, &head).await?.iter().cloned());
    }
    servers.sort_unstable();
    servers.dedup();
    if servers.is_empty() {
        return Ok(());
    }
    push_edu(&mut tx, &servers, edu).await?;
    tx.commit().await?;
    Ok(())
}

/// The servers other than ours with a member joined to a room `user` is joined to, read on
/// `conn` (the caller's transaction, so it sees what the transaction changed); none while
/// federation is off.
pub async fn servers_sharing_rooms_with(
    hs: &Homeserver,
    conn: &mut Conn,
    user: &UserId,
) -> Result<Vec<OwnedServerName>> {
    if !hs.config().federation.enabled {
        return Ok(Vec::new());
    }
    let ours = hs.server_name();
    let mut servers: Vec<OwnedServerName> = rooms::users_sharing_rooms_with(&mut *conn, user)
        .await?
        .into_iter()
        .map(|user| user.server_name().to_owned())
        .filter(|server| server != ours)
        .collect();
    servers.sort_unstable();
    servers.dedup();
    Ok(servers)
}

/// Queues `edu` (`edu_type` and `content`, e.g. a ruma `Edu`) for each of `servers` in the
/// caller's transaction; nothing for none.
pub async fn push_edu(
    tx: &mut WriteTx,
    servers: &[OwnedServerName],
    edu: &impl serde::Serialize,
) -> Result<()> {
    if servers.is_empty() {
        return Ok(());
    }
    let json =
        serde_json::to_string(edu).map_err(|e| crate::Error::Internal(anyhow::anyhow!("an EDU: {e}")))?;
    let destinations: Vec<&str> = servers.iter().map(|s| s.as_str()).collect();
    outbox::push_edu(tx, &destinations, &json, now_ms()).await?;
    tx.queued_for_federation(destinations);
    Ok(())
}
