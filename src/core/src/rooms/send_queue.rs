//! Group commit for message events, the hot path of a chat server. Each send is queued; whoever
//! takes the commit lock next drains the whole queue and writes it as one transaction with
//! multi-row statements, so a busy server pays a handful of database round trips per batch
//! instead of per message. A send is answered only after its batch committed.
//!
//! State events and redactions take the one-event path ([`super::append::RoomWriter`]): they
//! change state groups and other events, and are rare.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use ruma::{OwnedDeviceId, OwnedEventId, OwnedRoomId, OwnedUserId};
use tokio::sync::oneshot;

use super::{NewEvent, Pdu, RoomHead, auth, build, relations};
use crate::{
    Error, Homeserver, Result,
    push::evaluate::{self, Notifications},
    storage::{
        events::{self, NewEvent as EventRow},
        push_actions, rooms,
        txns::{self, TxnKey},
    },
};

/// Most sends written in one transaction (bounded by SQL parameter limits: 10 per event).
const MAX_BATCH: usize = 256;

/// One queued send.
struct Job {
    room_id: OwnedRoomId,
    sender: OwnedUserId,
    txn: TxnKey,
    event: NewEvent,
    /// Push rules evaluated before queueing (see [`check`]).
    push: Option<Notifications>,
    reply: oneshot::Sender<Result<OwnedEventId>>,
}

/// The send queue of one homeserver.
#[derive(Default)]
pub struct SendQueue {
    // A std mutex: held only to push or drain, never across an await.
    pending: Mutex<Vec<Job>>,
    commit: tokio::sync::Mutex<()>,
}

/// Sends a message event with a client transaction ID through the group commit.
pub async fn send(
    hs: &Homeserver,
    room_id: OwnedRoomId,
    sender: OwnedUserId,
    device_id: OwnedDeviceId,
    scope: String,
    txn_id: String,
    event: NewEvent,
) -> Result<OwnedEventId> {
    // Push rule evaluation is CPU work for every member of the room: done here, in the
    // sender's task, it stays out of the serial write section.
    let push = evaluate::before_send(hs, &room_id, &sender, &event).await?;
    let queue = hs.send_queue();
    let (reply, mut answer) = oneshot::channel();
    let txn = TxnKey { user_id: sender.to_string(), device_id: device_id.to_string(), scope, txn_id };
    queue.pending.lock().unwrap_or_else(|p| p.into_inner()).push(Job {
        room_id,
        sender,
        txn,
        event,
        push,
        reply,
    });
    loop {
        let _leader = queue.commit.lock().await;
        // An earlier leader may have written our send with its batch.
        if let Ok(result) = answer.try_recv() {
            return result;
        }
        let jobs: Vec<Job> = {
            let mut pending = queue.pending.lock().unwrap_or_else(|p| p.into_inner());
            let take = pending.len().min(MAX_BATCH);
            pending.drain(..take).collect()
        };
        write_batch(hs, jobs).await;
        if let Ok(result) = answer.try_recv() {
            return result;
        }
    }
}

/// A send that passed its checks, waiting for the batch to be written.
struct Accepted {
    job: Job,
    pdu: Pdu,
    push: Notifications,
    json: String,
    stream_ordering: i64,
    depth: i64,
}

async fn write_batch(hs: &Homeserver, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    // Room locks in a fixed order, then the database writer: the same order as RoomWriter.
    let room_ids: BTreeMap<OwnedRoomId, ()> = jobs.iter().map(|j| (j.room_id.clone(), ())).collect();
    let mut _locks = Vec::with_capacity(room_ids.len());
    for room_id in room_ids.keys() {
        _locks.push(hs.room_locks().lock(room_id).await);
    }
    let (accepted, heads) = match prepare_and_write(hs, jobs).await {
        Ok(done) => done,
        Err((accepted, error)) => {
            tracing::error!(error = %error_text(&error), "writing a batch of messages failed");
            for a in accepted {
                let _ = a.job.reply.send(Err(Error::Internal(anyhow::anyhow!("writing the message failed"))));
            }
            return;
        }
    };
    for head in heads.into_values() {
        hs.room_cache().set_head(head);
    }
    for a in accepted {
        let _ = a.job.reply.send(Ok(a.pdu.event_id));
    }
}

type Written = (Vec<Accepted>, HashMap<OwnedRoomId, RoomHead>);

/// Checks every job, writes the accepted ones and commits. Jobs that fail their own checks (or
/// repeat a transaction) are answered here; on a database failure the accepted ones come back
/// with the error for the caller to answer.
async fn prepare_and_write(
    hs: &Homeserver,
    jobs: Vec<Job>,
) -> std::result::Result<Written, (Vec<Accepted>, Error)> {
    let (started, batch_size) = (std::time::Instant::now(), jobs.len());
    let mut tx = match hs.db().begin().await {
        Ok(tx) => tx,
        Err(e) => return Err((Vec::new(), fail_all(jobs, e.into()))),
    };
    let keys: Vec<&TxnKey> = jobs.iter().map(|j| &j.txn).collect();
    let seen: HashMap<TxnKey, String> = match txns::get_many(&mut tx, &keys).await {
        Ok(found) => found.into_iter().collect(),
        Err(e) => return Err((Vec::new(), fail_all(jobs, e.into()))),
    };

    let mut heads: HashMap<OwnedRoomId, RoomHead> = HashMap::new();
    let mut first_extremity: HashMap<OwnedRoomId, Vec<(i64, String)>> = HashMap::new();
    let mut in_batch: HashMap<TxnKey, OwnedEventId> = HashMap::new();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(jobs.len());
    let mut repeats: Vec<(Job, OwnedEventId)> = Vec::new();
    for mut job in jobs {
        if let Some(id) = seen.get(&job.txn).and_then(|id| OwnedEventId::try_from(id.as_str()).ok()) {
            let _ = job.reply.send(Ok(id));
            continue;
        }
        if let Some(id) = in_batch.get(&job.txn) {
            repeats.push((job, id.clone()));
            continue;
        }
        if !heads.contains_key(&job.room_id) {
            let head = match hs.room_cache().head(&job.room_id) {
                Some(head) => Ok(head),
                None => RoomHead::load(&mut tx, &job.room_id).await,
            };
            match head {
                Ok(head) => {
                    first_extremity.insert(job.room_id.clone(), head.prev_events.clone());
                    heads.insert(job.room_id.clone(), head);
                }
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            }
        }
        let head = heads.get_mut(&job.room_id).expect("head inserted above");
        match check(hs, &mut tx, head, &mut job).await {
            Ok((pdu, push)) => {
                let json = match serde_json::to_string(&pdu.json) {
                    Ok(json) => json,
                    Err(e) => {
                        let _ = job.reply.send(Err(Error::Internal(e.into())));
                        continue;
                    }
                };
                // Later sends in this batch build on this one.
                head.depth += 1;
                head.prev_events = vec![(0, pdu.event_id.to_string())];
                in_batch.insert(job.txn.clone(), pdu.event_id.clone());
                accepted.push(Accepted { job, pdu, push, json, stream_ordering: 0, depth: head.depth });
            }
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }

    let checked = started.elapsed();
    let written = write(hs, &mut tx, &mut accepted, &mut heads, &first_extremity).await;
    let committed = match written {
        Ok(()) => tx.commit().await.map_err(Error::from),
        Err(e) => Err(e),
    };
    let total = started.elapsed();
    hs.metrics().observe_send_batch(batch_size, checked.as_secs_f64(), (total - checked).as_secs_f64());
    match committed {
        Ok(()) => {
            for (job, id) in repeats {
                let _ = job.reply.send(Ok(id));
            }
            Ok((accepted, heads))
        }
        Err(e) => {
            for (job, _) in repeats {
                let _ = job.reply.send(Err(Error::Internal(anyhow::anyhow!("writing the message failed"))));
            }
            Err((accepted, e))
        }
    }
}

/// Builds and authorises one send on top of `head`, with the notifications it causes.
async fn check(
    hs: &Homeserver,
    conn: &mut crate::storage::Conn,
    head: &RoomHead,
    job: &mut Job,
) -> Result<(Pdu, Notifications)> {
    let pdu = build::build(hs, head, &job.sender, &job.event)?;
    auth::check_local(hs, conn, head, &pdu).await?;
    relations::check_local(conn, head, &pdu).await?;
    // Evaluated before queueing, unless the room's state changed since (or was not cached).
    let push = match job.push.take() {
        Some(push) if push.computed_on(head) => push,
        _ => evaluate::for_pdu(hs, conn, head, &pdu).await?,
    };
    Ok((pdu, push))
}

/// The batch's statements: stream positions, events, relations, the search index, extremities,
/// transactions.
async fn write(
    hs: &Homeserver,
    tx: &mut crate::storage::WriteTx,
    accepted: &mut [Accepted],
    heads: &mut HashMap<OwnedRoomId, RoomHead>,
    first_extremity: &HashMap<OwnedRoomId, Vec<(i64, String)>>,
) -> Result<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    let positions = tx.next_stream_orderings(accepted.len());
    for (a, position) in accepted.iter_mut().zip(positions) {
        a.stream_ordering = position;
    }
    let kinds: Vec<String> = accepted.iter().map(|a| a.pdu.kind.to_string()).collect();
    let rows: Vec<EventRow<'_>> = accepted
        .iter()
        .zip(&kinds)
        .map(|(a, kind)| {
            let head = heads.get(&a.job.room_id).expect("every accepted send has a head");
            EventRow {
                event_id: a.pdu.event_id.as_str(),
                room_id: &a.pdu.room_id,
                kind,
                state_key: None,
                sender: a.pdu.sender.as_str(),
                depth: a.depth,
                origin_server_ts: i64::from(a.pdu.origin_server_ts.get()),
                stream_ordering: Some(a.stream_ordering),
                state_group: Some(head.state_group.unwrap_or(0)),
                json: &a.json,
            }
        })
        .collect();
    let nids: HashMap<String, i64> = events::insert_many(tx, &rows).await?.into_iter().collect();
    let nid_of = |a: &Accepted| {
        nids.get(a.pdu.event_id.as_str())
            .copied()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("inserted event without an ID back")))
    };
    for a in accepted.iter() {
        let event_nid = nid_of(a)?;
        relations::index(tx, &a.pdu, event_nid).await?;
        let group = heads.get(&a.job.room_id).expect("every accepted send has a head").state_group;
        tx.record(super::append::written(&a.pdu, (event_nid, a.stream_ordering), a.json.clone(), group));
    }
    let searchable: Vec<(i64, &Pdu)> = accepted.iter().map(|a| (a.stream_ordering, &a.pdu)).collect();
    crate::search::index::record(hs, tx, &searchable).await?;
    let (mut defaults, mut exceptions) = (Vec::new(), Vec::new());
    for a in accepted.iter() {
        let rows = a.push.rows(&a.pdu, a.stream_ordering);
        defaults.extend(rows.default);
        exceptions.extend(rows.exceptions);
    }
    push_actions::insert_defaults(tx, &defaults).await?;
    push_actions::insert_many(tx, &exceptions).await?;
    for note in accepted.iter().filter_map(|a| a.push.unread_note(&a.pdu, a.stream_ordering)) {
        tx.note_unread(note);
    }

    // Each room's extremity moves from its head before the batch to its last event in the batch.
    let mut last: HashMap<&OwnedRoomId, (i64, String)> = HashMap::new();
    for a in accepted.iter() {
        last.insert(&a.job.room_id, (nid_of(a)?, a.pdu.event_id.to_string()));
    }
    let mut moves = Vec::new();
    for (room_id, (new_nid, _)) in &last {
        match first_extremity.get(*room_id).map(Vec::as_slice) {
            Some([(old, _)]) => moves.push((room_id.as_ref(), *old, *new_nid)),
            _ => rooms::set_extremities(tx, room_id, &[*new_nid]).await?,
        }
    }
    let moved = rooms::replace_extremities(tx, &moves).await?;
    if moved != moves.len() as u64 {
        return Err(Error::Internal(anyhow::anyhow!("forward extremities changed under the room lock")));
    }
    for (room_id, (nid, event_id)) in last {
        if let Some(head) = heads.get_mut(room_id) {
            head.prev_events = vec![(nid, event_id)];
        }
    }

    for a in accepted.iter() {
        if let Some(head) = heads.get(&a.job.room_id) {
            super::outbound::queue(hs, tx, head, &a.pdu).await?;
        }
    }

    let txn_rows: Vec<(&TxnKey, &str)> =
        accepted.iter().map(|a| (&a.job.txn, a.pdu.event_id.as_str())).collect();
    txns::insert_many(tx, &txn_rows).await?;
    Ok(())
}

fn fail_all(jobs: Vec<Job>, error: Error) -> Error {
    for job in jobs {
        let _ = job.reply.send(Err(Error::Internal(anyhow::anyhow!("writing the message failed"))));
    }
    error
}

fn error_text(error: &Error) -> String {
    match error {
        Error::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    }
}
