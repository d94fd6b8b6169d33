//! Appending a local event: build, authorise, then persist the event, its state group, the
//! room's current state and forward extremities in the caller's transaction.

use std::sync::Arc;

use ruma::{OwnedEventId, OwnedUserId, RoomId, UserId, events::TimelineEventType};
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;

use super::{Pdu, RoomHead, auth, build, redaction, relations};
use crate::{
    Homeserver, Result,
    storage::{Conn, WriteTx, events, positions::Written, rooms, state},
};

/// An event a local user wants to send.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Event type.
    pub kind: TimelineEventType,
    /// State key, for state events.
    pub state_key: Option<String>,
    /// Content.
    pub content: Value,
    /// For redactions: the redacted event.
    pub redacts: Option<OwnedEventId>,
}

impl NewEvent {
    /// A state event.
    pub fn state(
        kind: impl Into<TimelineEventType>,
        state_key: impl Into<String>,
        content: Value,
    ) -> NewEvent {
        NewEvent { kind: kind.into(), state_key: Some(state_key.into()), content, redacts: None }
    }

    /// A message-like event.
    pub fn message(kind: impl Into<TimelineEventType>, content: Value) -> NewEvent {
        NewEvent { kind: kind.into(), state_key: None, content, redacts: None }
    }
}

/// Builds, authorises and stores `event` on top of `head`, then advances `head` past it. The
/// caller holds the room's write lock and commits the transaction.
pub async fn append(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    sender: &UserId,
    event: &NewEvent,
) -> Result<Pdu> {
    let pdu = build::build(hs, head, sender, event)?;
    let conn: &mut Conn = tx;
    auth::check_local(hs, conn, head, &pdu).await?;
    // Checks the auth rules leave to the sender's server.
    if pdu.kind == TimelineEventType::RoomRedaction {
        redaction::check_local(hs, conn, head, &pdu).await?;
    }
    relations::check_local(conn, head, &pdu).await?;
    if pdu.kind == TimelineEventType::RoomCanonicalAlias {
        super::aliases::check_canonical_alias(hs, conn, head, &event.content).await?;
    }
    let stream_ordering = persist(hs, tx, head, &pdu).await?;
    if pdu.is_state() {
        // State events are the next events' auth events.
        hs.room_cache().put_event(Arc::new(pdu.clone()));
    }
    crate::push::evaluate::record(hs, tx, head, &pdu, stream_ordering).await?;
    super::outbound::queue(hs, tx, head, &pdu).await?;
    Ok(pdu)
}

/// Writes the event and moves `head` past it; returns its stream position.
pub(super) async fn persist(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    pdu: &Pdu,
) -> Result<i64> {
    let stream_ordering = tx.next_stream_ordering();
    let event_nid = store(hs, tx, head, pdu, Standing::Timeline(stream_ordering)).await?;
    let conn: &mut Conn = tx;
    if let Some(state_key) = &pdu.state_key {
        set_current(conn, pdu, state_key, (event_nid, stream_ordering)).await?;
    }
    let replaced = match head.prev_events.as_slice() {
        [(old, _)] => rooms::replace_extremities(conn, &[(&pdu.room_id, *old, event_nid)]).await? == 1,
        _ => false,
    };
    if !replaced {
        rooms::set_extremities(conn, &pdu.room_id, &[event_nid]).await?;
    }
    head.prev_events = vec![(event_nid, pdu.event_id.to_string())];
    Ok(stream_ordering)
}

/// Points the room's current state at `(type, state_key)` to the event.
pub(super) async fn set_current(
    conn: &mut Conn,
    pdu: &Pdu,
    state_key: &str,
    position: (i64, i64),
) -> Result<()> {
    let membership = membership_of(pdu);
    state::set_current(conn, &pdu.room_id, &pdu.kind.to_string(), state_key, position, membership.as_deref())
        .await?;
    Ok(())
}

/// The membership of a member event, as `current_state` keeps it.
pub(super) fn membership_of(pdu: &Pdu) -> Option<String> {
    (pdu.kind == TimelineEventType::RoomMember)
        .then(|| pdu.content_value().get("membership").and_then(Value::as_str).map(str::to_owned))
        .flatten()
}

/// Where a stored event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Standing {
    /// Part of the timeline, at this stream position.
    Timeline(i64),
    /// Received from another server and authorised by the state before it, but not by the
    /// room's current state: kept in the graph, shown to no client (spec: Soft failure).
    SoftFailed,
    /// Received from another server and not authorised: kept so it is not fetched again, but it
    /// changes no state.
    Rejected,
    /// Known without the state before it (part of a joined room's state or auth chain).
    Outlier,
    /// History fetched from another server, at this (negative) stream position: in the
    /// timeline, with no state known after it and no effect on the room's state.
    Backfilled(i64),
}

/// Writes the event row (with the state after it) on top of `head`, the state before it, and
/// moves `head`'s state, depth and room past it; returns the event's interned ID. Extremities
/// and the room's current state are the caller's.
pub(super) async fn store(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    pdu: &Pdu,
    standing: Standing,
) -> Result<i64> {
    let json = serde_json::to_string(&pdu.json).map_err(|e| crate::Error::Internal(e.into()))?;
    let conn: &mut Conn = tx;
    let depth = i64::from(pdu.depth);

    // A state event starts a new state group: a delta on the head's group, or a full snapshot
    // when the chain has grown long (or there is no group yet).
    let state_key_nid = match (&pdu.state_key, standing) {
        (_, Standing::Rejected | Standing::Outlier | Standing::Backfilled(_)) | (None, _) => None,
        (Some(key), _) => Some(state::intern_key(conn, &pdu.kind.to_string(), key).await?),
    };
    let stream_ordering = match standing {
        Standing::Timeline(position) | Standing::Backfilled(position) => Some(position),
        Standing::SoftFailed | Standing::Rejected | Standing::Outlier => None,
    };
    let state_group = match standing {
        Standing::Backfilled(_) => None,
        _ => Some(head.state_group.unwrap_or(0)),
    };
    // The event row needs its state group and the group entry needs the event's nid: insert the
    // event first with the head's group, then point it at the new group.
    let row = events::NewEvent {
        event_id: pdu.event_id.as_str(),
        room_id: &pdu.room_id,
        kind: &pdu.kind.to_string(),
        state_key: pdu.state_key.as_deref(),
        sender: pdu.sender.as_str(),
        depth,
        origin_server_ts: i64::from(pdu.origin_server_ts.get()),
        stream_ordering,
        state_group,
        json: &json,
    };
    let event_nid = events::insert(conn, &row).await?;
    if let Some(stream_ordering) = stream_ordering {
        relations::index(conn, pdu, event_nid).await?;
        crate::search::index::record(hs, conn, &[(stream_ordering, pdu)]).await?;
        if pdu.kind == TimelineEventType::RoomRedaction {
            redaction::apply(hs, conn, head, pdu).await?;
        }
    } else {
        let flag = match standing {
            Standing::Outlier => events::Flag::Outlier,
            Standing::Rejected => events::Flag::Rejected,
            Standing::SoftFailed | Standing::Timeline(_) | Standing::Backfilled(_) => {
                events::Flag::SoftFailed
            }
        };
        events::set_flag(conn, event_nid, flag).await?;
    }

    if let (Some(key_nid), Some(state_key)) = (state_key_nid, &pdu.state_key) {
        // A new map: the old one stays with whoever holds it (the cached head, the push
        // context, caches stamped with it), and the two share all but one path of their tree.
        let state = head
            .state
            .update((pdu.kind.to_string(), state_key.clone()), (event_nid, pdu.event_id.to_string()));
        let group = match head.state_group.filter(|_| !state::needs_snapshot(head.chain_len, state.len())) {
            Some(parent) => {
                let delta = [(key_nid, event_nid)];
                let group =
                    state::insert_group(conn, &pdu.room_id, Some((parent, head.chain_len)), &delta).await?;
                head.chain_len += 1;
                group
            }
            None => {
                head.chain_len = 0;
                super::fork::snapshot(conn, &pdu.room_id, &state).await?
            }
        };
        events::set_state_group(conn, event_nid, group).await?;
        head.state_group = Some(group);
        head.state = Arc::new(state);
    }
    head.depth = head.depth.max(depth);
    head.room_id = pdu.room_id.clone();
    if let Some(position) = stream_ordering {
        tx.record(written(pdu, (event_nid, position), json, head.state_group));
    }
    Ok(event_nid)
}

/// What the commit hook learns of `pdu`, an accepted timeline event stored as `(event_nid,
/// position)` with its `json` and the state group after it (see [`Written`]).
pub(super) fn written(
    pdu: &Pdu,
    (event_nid, position): (i64, i64),
    json: String,
    group: Option<i64>,
) -> Written {
    let member = (pdu.kind == TimelineEventType::RoomMember)
        .then(|| pdu.state_key.as_deref().and_then(|key| OwnedUserId::try_from(key).ok()))
        .flatten();
    // A redaction also changed its target's row: recent rows read before it are stale.
    let event = (pdu.kind != TimelineEventType::RoomRedaction).then(|| {
        Arc::new(events::StoredEvent {
            event_nid,
            event_id: pdu.event_id.to_string(),
            room_id: pdu.room_id.to_string(),
            json,
            stream_ordering: Some(position),
            state_group: Some(group.unwrap_or(0)),
            redacted_by: None,
        })
    });
    Written { position, room_id: pdu.room_id.clone(), member, event }
}

/// Sends one event into an existing room: takes the room's write lock, appends, commits.
pub async fn send(hs: &Homeserver, room_id: &RoomId, sender: &UserId, event: &NewEvent) -> Result<Pdu> {
    let mut writer = RoomWriter::open(hs, room_id).await?;
    let pdu = writer.append(sender, event).await?;
    writer.commit().await?;
    Ok(pdu)
}

/// Exclusive write access to one room: its write lock, a transaction, and a working copy of its
/// head. Dropping it without [`commit`](Self::commit) rolls everything back.
pub struct RoomWriter<'a> {
    hs: &'a Homeserver,
    _lock: OwnedMutexGuard<()>,
    /// The open transaction.
    pub tx: WriteTx,
    head: RoomHead,
}

impl<'a> RoomWriter<'a> {
    /// Takes the room's write lock and opens a transaction; 404 for unknown rooms.
    pub async fn open(hs: &'a Homeserver, room_id: &RoomId) -> Result<RoomWriter<'a>> {
        let lock = hs.room_locks().lock(room_id).await;
        let mut tx = hs.db().begin().await?;
        let head = match hs.room_cache().head(room_id) {
            Some(head) => head,
            None => RoomHead::load(&mut tx, room_id).await?,
        };
        Ok(RoomWriter { hs, _lock: lock, tx, head })
    }

    /// The open transaction and the working head, for appending events received from other
    /// servers.
    pub(super) fn parts(&mut self) -> (&mut WriteTx, &mut RoomHead) {
        (&mut self.tx, &mut self.head)
    }

    /// Appends one event on top of the working head.
    pub async fn append(&mut self, sender: &UserId, event: &NewEvent) -> Result<Pdu> {
        append(self.hs, &mut self.tx, &mut self.head, sender, event).await
    }

    /// Commits, then publishes the advanced head to the cache.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.hs.room_cache().set_head(self.head);
        Ok(())
    }
}
