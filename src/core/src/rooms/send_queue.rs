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

use super::{NewEvent, Pdu, RoomHead, auth, build, relations, timeline_batch};
use crate::{
    Error, Homeserver, Result,
    push::evaluate::{self, Notifications},
    storage::txns::{self, TxnKey},
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
                accepted.push(Accepted { job, pdu, push, json, depth: head.depth });
            }
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }

    let checked = started.elapsed();
    let written = write(hs, &mut tx, &accepted, &mut heads, &first_extremity).await;
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

/// The batch's statements: the timeline rows ([`timeline_batch::write`]), the outbox,
/// transactions.
async fn write(
    hs: &Homeserver,
    tx: &mut crate::storage::WriteTx,
    accepted: &[Accepted],
    heads: &mut HashMap<OwnedRoomId, RoomHead>,
    first_extremity: &HashMap<OwnedRoomId, Vec<(i64, String)>>,
) -> Result<()> {
    if accepted.is_empty() {
        return Ok(());
    }
    let entries: Vec<timeline_batch::Entry<'_>> = accepted
        .iter()
        .map(|a| timeline_batch::Entry {
            pdu: &a.pdu,
            json: &a.json,
            depth: a.depth,
            state_group: heads.get(&a.job.room_id).and_then(|head| head.state_group),
            push: &a.push,
        })
        .collect();
    let extremities = timeline_batch::write(hs, tx, &entries, first_extremity).await?;
    for (room_id, extremity) in extremities {
        if let Some(head) = heads.get_mut(&room_id) {
            head.prev_events = vec![extremity];
        }
    }

    let queued: Vec<(&RoomHead, &Pdu)> =
        accepted.iter().filter_map(|a| Some((heads.get(&a.job.room_id)?, &a.pdu))).collect();
    super::outbound::queue_many(hs, tx, &queued, None).await?;

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
