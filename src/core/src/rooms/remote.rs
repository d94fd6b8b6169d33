//! Receiving an event from another server (spec: Server-Server API › Checks performed on
//! receipt of a PDU). The federation crate has already checked its format, signatures and
//! content hash (redacting it on a wrong hash); here it is authorised against its auth events,
//! then against the state before it (both failures reject it), then against the room's current
//! state (a failure soft-fails it), and stored: an accepted event joins the timeline at the next
//! stream position, moves the forward extremities and the current state, and wakes local syncs
//! through the same commit hook as a local event.

use std::{collections::HashMap, sync::Arc};

use ruma::{OwnedEventId, events::TimelineEventType, state_res};

use super::{
    Pdu, RoomHead,
    append::{self, RoomWriter, Standing, persist},
    auth,
    fork::{self, StateBefore},
    remote_batch::{Facts, Held},
};
use crate::{
    Error, Homeserver, Result,
    storage::{Conn, WriteTx, events, federation_txns, gaps, rooms},
    time::now_ms,
};

/// What became of a received event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Authorised and appended to the room's timeline.
    Accepted,
    /// This server already had it.
    Known,
    /// Authorised by the state before it but not by the room's current state: kept in the
    /// graph, shown to no client, never a prev event of ours.
    SoftFailed(String),
    /// Not authorised; the reason.
    Rejected(String),
    /// Events it names (prev or auth events) this server lacks: fetch them, then try again.
    Missing(Vec<OwnedEventId>),
}

/// Receives `pdu`, an event of a room this server is in (404 otherwise), whose signatures and
/// content hash the caller verified.
pub async fn receive(hs: &Homeserver, pdu: &Pdu) -> Result<Received> {
    let mut results = receive_batch(hs, &[pdu]).await?;
    Ok(results.pop().expect("one result for the one event"))
}

/// Receives events of one room (404 for a room this server is not in), in the order given,
/// each as [`receive`] would, in one write transaction: a transaction from another server
/// brings up to 50, and a commit per event cost more than checking it. What is stored about the
/// events is looked up once for the batch, and accepted message events that follow the head
/// are written together ([`remote_batch`]). The results stop at the first event that names
/// missing events (the ones after it are not looked at: fetch what it lacks, then hand them in
/// again). An error rolls back the whole batch.
pub async fn receive_batch(hs: &Homeserver, pdus: &[&Pdu]) -> Result<Vec<Received>> {
    Ok(receive_batch_answering(hs, pdus, None).await?.0)
}

/// The answer to an inbound federation transaction (spec: Server-Server API › Transactions),
/// for the batch of its PDUs that completes it to record in its own write transaction: a crash
/// after the batch's commit then cannot leave the transaction unanswered, to be processed again
/// when the sending server retries it.
pub struct TxnAnswer<'a> {
    /// The sending server.
    pub origin: &'a str,
    /// The transaction's ID.
    pub txn_id: &'a str,
    /// The answer's JSON given the batch's results; `None` when the batch does not complete
    /// the transaction (events after it are left, or missing events are to be fetched).
    pub render: &'a (dyn Fn(&[Received]) -> Option<String> + Sync),
}

/// [`receive_batch`], recording `answer` in the batch's write transaction when the batch
/// completes it; whether it did.
pub async fn receive_batch_answering(
    hs: &Homeserver,
    pdus: &[&Pdu],
    answer: Option<&TxnAnswer<'_>>,
) -> Result<(Vec<Received>, bool)> {
    let Some(first) = pdus.first() else { return Ok((Vec::new(), false)) };
    if pdus.iter().any(|pdu| pdu.room_id != first.room_id) {
        return Err(Error::Internal(anyhow::anyhow!("a batch of received events spans rooms")));
    }
    let mut writer = RoomWriter::open(hs, &first.room_id).await?;
    let (tx, head) = writer.parts();
    let mut facts = Facts::load(tx, pdus).await?;
    let mut held = Held::default();
    let mut results = Vec::with_capacity(pdus.len());
    for pdu in pdus {
        let received = receive_one(hs, tx, head, pdu, &mut facts, &mut held).await?;
        let missing = matches!(received, Received::Missing(_));
        results.push(received);
        if missing {
            break;
        }
    }
    held.write(hs, tx, head).await?;
    let rendered = answer.and_then(|answer| Some((answer, (answer.render)(&results)?)));
    if let Some((answer, json)) = &rendered {
        federation_txns::record(&mut **tx, answer.origin, answer.txn_id, json, now_ms()).await?;
    }
    writer.commit().await?;
    Ok((results, rendered.is_some()))
}

/// Appends `pdu` like a received event, then queues it for the other servers in the room: an
/// event of ours built before the room's head was known to stay put (an invite countersigned by
/// the invitee's server), or one another server handed us to pass on (`send_join`).
/// `from`, the server that handed it over, is not sent it back.
pub async fn append_own(hs: &Homeserver, pdu: &Pdu, from: Option<&ruma::ServerName>) -> Result<Received> {
    let mut writer = RoomWriter::open(hs, &pdu.room_id).await?;
    let (tx, head) = writer.parts();
    let mut facts = Facts::load(tx, &[pdu]).await?;
    let mut held = Held::default();
    let received = receive_one(hs, tx, head, pdu, &mut facts, &mut held).await?;
    held.write(hs, tx, head).await?;
    if received == Received::Accepted {
        super::outbound::queue_except(hs, tx, head, pdu, from).await?;
    }
    writer.commit().await?;
    Ok(received)
}

/// One received event, in the room writer's transaction. A message event that follows the head
/// and is accepted is held (`held`) to be written with the others; anything else first writes
/// what is held, then itself.
async fn receive_one<'a>(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    pdu: &'a Pdu,
    facts: &mut Facts,
    held: &mut Held<'a>,
) -> Result<Received> {
    if pdu.kind == TimelineEventType::RoomCreate {
        return Ok(Received::Rejected("a room has one create event".to_owned()));
    }
    if facts.known(pdu.event_id.as_str()) {
        return Ok(Received::Known);
    }
    // Anything else may read or change what the held events are part of (the graph, the
    // state): they are written first.
    let plain = !pdu.is_state()
        && pdu.kind != TimelineEventType::RoomRedaction
        && covers_extremities(head, pdu)
        && !pdu.auth_events.iter().any(|id| held.holds(id.as_str()));
    if !plain {
        held.write(hs, tx, head).await?;
    }
    let received = match authorise(hs, tx, head, pdu, facts).await? {
        Verdict::Accepted(_) if plain => {
            let push = crate::push::evaluate::for_pdu(hs, tx, head, pdu).await?;
            held.hold(head, pdu, push)?;
            Received::Accepted
        }
        verdict => {
            held.write(hs, tx, head).await?;
            store(hs, tx, head, pdu, verdict).await?
        }
    };
    match &received {
        Received::Missing(_) => {}
        other => facts.stored(pdu.event_id.as_str(), matches!(other, Received::Rejected(_))),
    }
    Ok(received)
}

/// What the auth checks made of a received event, with the state before it.
enum Verdict {
    /// Events it names that this server lacks.
    Missing(Vec<OwnedEventId>),
    /// Not authorised by its auth events or the state before it: why.
    Rejected(RoomHead, String),
    /// Not authorised by the room's current state: why.
    SoftFailed(RoomHead, String),
    /// Authorised.
    Accepted(RoomHead),
}

/// The checks of a received event (spec: Checks performed on receipt of a PDU, 4–6), without
/// writing anything.
async fn authorise(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &RoomHead,
    pdu: &Pdu,
    facts: &Facts,
) -> Result<Verdict> {
    let before = match fork::state_before(hs, tx, head, &pdu.prev_events).await? {
        StateBefore::Known(before) => before,
        StateBefore::Missing(missing) => return Ok(Verdict::Missing(missing)),
    };
    let mut wanted: Vec<&str> = pdu.auth_events.iter().map(|id| id.as_str()).collect();
    if let Some(create) = head.state_event_id("m.room.create", "") {
        wanted.push(create);
    }
    let auth_events = auth::load(hs, tx, head, &wanted).await?;
    let missing: Vec<OwnedEventId> =
        pdu.auth_events.iter().filter(|id| !auth_events.contains_key(*id)).cloned().collect();
    if !missing.is_empty() {
        return Ok(Verdict::Missing(missing));
    }
    let rules = &head.rules.authorization;

    // 1. Against its own auth events (none of them rejected), 2. against the state before it.
    let cited: Vec<&str> = pdu.auth_events.iter().map(|id| id.as_str()).collect();
    let rejected = facts.rejected_among(&cited);
    let verdict = if rejected.is_empty() {
        auth::check(rules, pdu, &auth_events, &auth::by_key(&auth_events))
            .map_err(|reason| format!("not authorised by its auth events: {reason}"))
    } else {
        Err(format!("its auth events {rejected:?} were rejected"))
    };
    let verdict = match verdict {
        Ok(()) => {
            let state = state_events(hs, tx, &before, pdu).await?;
            auth::check(rules, pdu, &auth_events, &auth::by_key(&state))
                .map_err(|reason| format!("not authorised by the state before it: {reason}"))
        }
        Err(reason) => Err(reason),
    };
    if let Err(reason) = verdict {
        return Ok(Verdict::Rejected(before, reason));
    }

    // 3. Against the room's current state (unless that is the state before it).
    if !Arc::ptr_eq(&before.state, &head.state) {
        let state = state_events(hs, tx, head, pdu).await?;
        if let Err(reason) = auth::check(rules, pdu, &auth_events, &auth::by_key(&state)) {
            return Ok(Verdict::SoftFailed(before, format!("not authorised by the current state: {reason}")));
        }
    }
    Ok(Verdict::Accepted(before))
}

/// Stores a received event as its verdict says.
async fn store(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    pdu: &Pdu,
    verdict: Verdict,
) -> Result<Received> {
    let before = match verdict {
        Verdict::Missing(missing) => return Ok(Received::Missing(missing)),
        Verdict::Rejected(mut before, reason) => {
            append::store(hs, tx, &mut before, pdu, Standing::Rejected).await?;
            return Ok(Received::Rejected(reason));
        }
        Verdict::SoftFailed(mut before, reason) => {
            append::store(hs, tx, &mut before, pdu, Standing::SoftFailed).await?;
            return Ok(Received::SoftFailed(reason));
        }
        Verdict::Accepted(before) => before,
    };
    if Arc::ptr_eq(&before.state, &head.state) && covers_extremities(head, pdu) {
        // The common case: the event follows exactly our extremities, like a local event.
        let stream_ordering = persist(hs, tx, head, pdu).await?;
        crate::push::evaluate::record(hs, tx, head, pdu, stream_ordering).await?;
    } else {
        append_on_fork(hs, tx, head, before, pdu).await?;
    }
    if pdu.is_state() {
        hs.room_cache().put_event(Arc::new(pdu.clone()));
    }
    Ok(Received::Accepted)
}

/// Whether `pdu`'s prev events are exactly the room's forward extremities.
fn covers_extremities(head: &RoomHead, pdu: &Pdu) -> bool {
    head.prev_events.len() == pdu.prev_events.len()
        && head.prev_events.iter().all(|(_, id)| pdu.prev_events.iter().any(|p| p.as_str() == id))
}

/// Appends an accepted event that does not follow the extremities exactly (a fork, or an event
/// built on older events): stored on the state before it, it replaces its prev events among
/// the extremities, and the room's state becomes the resolution of the state after it with the
/// current state.
async fn append_on_fork(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &mut RoomHead,
    mut after: RoomHead,
    pdu: &Pdu,
) -> Result<()> {
    let stream_ordering = tx.next_stream_ordering();
    let event_nid = append::store(hs, tx, &mut after, pdu, Standing::Timeline(stream_ordering)).await?;

    let mut extremities: Vec<(i64, String)> = head
        .prev_events
        .iter()
        .filter(|(_, id)| !pdu.prev_events.iter().any(|p| p.as_str() == id))
        .cloned()
        .collect();
    extremities.push((event_nid, pdu.event_id.to_string()));
    let nids: Vec<i64> = extremities.iter().map(|(nid, _)| *nid).collect();
    rooms::set_extremities(tx, &pdu.room_id, &nids).await?;

    let mut new_head =
        if extremities.len() == 1 { after } else { fork::resolve_heads(hs, tx, head, &after).await? };
    let forked = (extremities.len() > 1).then_some(new_head.state_group).flatten();
    rooms::set_forked_state_group(&mut **tx, &pdu.room_id, forked).await?;
    fork::update_current_state(hs, tx, head, &new_head, (event_nid, stream_ordering)).await?;
    new_head.prev_events = extremities;
    new_head.depth = new_head.depth.max(head.depth);
    crate::push::evaluate::record(hs, tx, &new_head, pdu, stream_ordering).await?;
    *head = new_head;
    Ok(())
}

/// The events of `state` the auth rules look at for `pdu` (and the create event).
async fn state_events(
    hs: &Homeserver,
    conn: &mut Conn,
    state: &RoomHead,
    pdu: &Pdu,
) -> Result<HashMap<OwnedEventId, Arc<Pdu>>> {
    let types = state_res::auth_types_for_event(
        &pdu.kind,
        &pdu.sender,
        pdu.state_key.as_deref(),
        &pdu.content,
        &state.rules.authorization,
    )
    .map_err(Error::bad_json)?;
    let mut ids: Vec<&str> =
        types.iter().filter_map(|(kind, key)| state.state_event_id(&kind.to_string(), key)).collect();
    if let Some(create) = state.state_event_id("m.room.create", "") {
        ids.push(create);
    }
    auth::load(hs, conn, state, &ids).await
}

/// The room's forward extremities (what `/get_missing_events` names as `earliest_events`).
pub async fn extremities(hs: &Homeserver, room_id: &ruma::RoomId) -> Result<Vec<OwnedEventId>> {
    let mut conn = hs.db().pool().acquire().await?;
    let rows = rooms::extremities(&mut conn, room_id).await?;
    Ok(rows.into_iter().filter_map(|row| OwnedEventId::try_from(row.event_id).ok()).collect())
}

/// The rules of the room's version; 404 for unknown rooms.
pub async fn rules(
    hs: &Homeserver,
    room_id: &ruma::RoomId,
) -> Result<ruma::room_version_rules::RoomVersionRules> {
    let version =
        rooms::version(hs.db().pool(), room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
    super::head::rules_for(&version)
}

/// Whether this server has `event_id` with the state after it (so events after it can come in).
pub async fn has_state_after(hs: &Homeserver, event_id: &ruma::EventId) -> Result<bool> {
    let row = events::get(hs.db().pool(), event_id.as_str()).await?;
    Ok(row.is_some_and(|row| row.state_group.is_some_and(|group| group > 0)))
}

/// The depth below which events of `room_id` are history from before this server last came
/// into the room through another server: the depth of the newest current join of a local user
/// whose prev events are not in the timeline here (a join through `send_join`, after which the
/// room's past is known by its state only) or were backfilled into its gap (`rooms::gap`),
/// 0 when there is none. Events fetched to fill a
/// gap (`/get_missing_events`) below it are no news: appended now, they would show up after
/// the join as if the timeline had gone on while no one here was in the room.
pub async fn history_floor(hs: &Homeserver, room_id: &ruma::RoomId) -> Result<i64> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = match hs.room_cache().head(room_id) {
        Some(head) => head,
        None => RoomHead::load(&mut conn, room_id).await?,
    };
    let local: Vec<&str> = head
        .state
        .iter()
        .filter(|((kind, key), _)| {
            kind == "m.room.member"
                && ruma::UserId::parse(key.as_str()).is_ok_and(|user| user.server_name() == hs.server_name())
        })
        .map(|(_, (_, id))| id.as_str())
        .collect();
    let members = auth::load(hs, &mut conn, &head, &local).await?;
    let mut joins: Vec<&Pdu> = members
        .values()
        .filter(|pdu| pdu.content_value().get("membership").and_then(|m| m.as_str()) == Some("join"))
        .map(|pdu| &**pdu)
        .collect();
    joins.sort_by_key(|pdu| std::cmp::Reverse(pdu.depth));
    // One query for the prev events of them all; the newest join missing one sets the floor.
    let prevs: Vec<&str> =
        joins.iter().flat_map(|pdu| pdu.prev_events.iter().map(|id| id.as_str())).collect();
    let positions = events::positions_of(&mut conn, &prevs).await?;
    let in_timeline = |id: &OwnedEventId| positions.get(id.as_str()).is_some_and(Option::is_some);
    // A join whose gap was filled since (`rooms::gap`) still came through another server.
    let above_gaps = gaps::events_above_gaps(&mut *conn, room_id).await?;
    let entry = joins.into_iter().find(|pdu| {
        !pdu.prev_events.iter().all(in_timeline) || above_gaps.iter().any(|id| id == pdu.event_id.as_str())
    });
    let floor = entry.map_or(0, |pdu| i64::from(pdu.depth));
    Ok(floor)
}
