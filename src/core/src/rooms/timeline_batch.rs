//! Writing a batch of message events that each follow the one before on their room's head, with
//! multi-row statements: a handful of database round trips per batch instead of several per
//! event. Shared by the group commit of local sends ([`super::send_queue`]) and by the batches
//! of events received from other servers ([`super::remote::receive_batch`]).
//!
//! Only events that change no state and touch no other event (no state events, no redactions)
//! are written this way; their checks are the caller's.

use std::collections::HashMap;

use ruma::OwnedRoomId;

use super::{Pdu, append::written, relations};
use crate::{
    Error, Result,
    push::evaluate::Notifications,
    storage::{WriteTx, events, rooms},
};

/// One checked event of a batch.
pub(super) struct Entry<'a> {
    /// The event.
    pub pdu: &'a Pdu,
    /// Its canonical JSON, as stored.
    pub json: &'a str,
    /// Its depth.
    pub depth: i64,
    /// The state group of its room's head (message events do not change it).
    pub state_group: Option<i64>,
    /// Whom it notifies.
    pub push: &'a Notifications,
}

/// Writes `entries` (in room order) in the caller's transaction: stream positions, events,
/// relations, the search index, push rows and their unread notes, and each room's forward extremity, moved from
/// `first_extremity` (the room's extremities before the batch) to its last event. The commit
/// hook learns of every event. Returns each room's forward extremity after the batch,
/// `(event_nid, event_id)`.
pub(super) async fn write(
    hs: &crate::Homeserver,
    tx: &mut WriteTx,
    entries: &[Entry<'_>],
    first_extremity: &HashMap<OwnedRoomId, Vec<(i64, String)>>,
) -> Result<HashMap<OwnedRoomId, (i64, String)>> {
    if entries.is_empty() {
        return Ok(HashMap::new());
    }
    let positions = tx.next_stream_orderings(entries.len());
    let kinds: Vec<String> = entries.iter().map(|e| e.pdu.kind.to_string()).collect();
    let rows: Vec<events::NewEvent<'_>> = entries
        .iter()
        .zip(&kinds)
        .zip(&positions)
        .map(|((e, kind), position)| events::NewEvent {
            event_id: e.pdu.event_id.as_str(),
            room_id: &e.pdu.room_id,
            kind,
            state_key: None,
            sender: e.pdu.sender.as_str(),
            depth: e.depth,
            origin_server_ts: i64::from(e.pdu.origin_server_ts.get()),
            stream_ordering: Some(*position),
            state_group: Some(e.state_group.unwrap_or(0)),
            json: e.json,
        })
        .collect();
    let nids: HashMap<String, i64> = events::insert_many(tx, &rows).await?.into_iter().collect();
    let mut written_at = Vec::with_capacity(entries.len());
    for (e, position) in entries.iter().zip(&positions) {
        let event_nid = nids
            .get(e.pdu.event_id.as_str())
            .copied()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("inserted event without an ID back")))?;
        relations::index(tx, e.pdu, event_nid).await?;
        tx.record(written(e.pdu, (event_nid, *position), e.json.to_owned(), e.state_group));
        written_at.push((event_nid, *position));
    }
    let searchable: Vec<(i64, &Pdu)> = entries.iter().zip(&positions).map(|(e, p)| (*p, e.pdu)).collect();
    crate::search::index::record(hs, tx, &searchable).await?;
    let notified: Vec<_> = entries.iter().zip(&positions).map(|(e, p)| (e.push, e.pdu, *p)).collect();
    crate::push::evaluate::write(tx, &notified).await?;

    // Each room's extremity moves from its head before the batch to its last event in the batch.
    let mut last: HashMap<OwnedRoomId, (i64, String)> = HashMap::new();
    for (e, (nid, _)) in entries.iter().zip(&written_at) {
        last.insert(e.pdu.room_id.clone(), (*nid, e.pdu.event_id.to_string()));
    }
    let mut moves = Vec::new();
    for (room_id, (new_nid, _)) in &last {
        match first_extremity.get(room_id).map(Vec::as_slice) {
            Some([(old, _)]) => moves.push((room_id.as_ref(), *old, *new_nid)),
            _ => rooms::set_extremities(tx, room_id, &[*new_nid]).await?,
        }
    }
    let moved = rooms::replace_extremities(tx, &moves).await?;
    if moved != moves.len() as u64 {
        return Err(Error::Internal(anyhow::anyhow!("forward extremities changed under the room lock")));
    }
    Ok(last)
}
