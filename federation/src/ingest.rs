//! Taking in PDUs from other servers (spec: Server-Server API › Checks performed on receipt of
//! a PDU): format and room version, signatures (dropped on failure), content hash (redacted on
//! failure), then core's auth checks and storage (`hearth_core::rooms::remote`). Prev events
//! this server lacks are fetched from the sending server with `/get_missing_events` first, and
//! when that leaves a gap, the state at them with `/event` and `/state_ids`.

use std::collections::{HashMap, HashSet};

use hearth_core::{
    rooms::{
        Pdu,
        remote::{self, Received, TxnAnswer},
        remote_state, server_acl,
    },
    storage::rooms,
};
use ruma::{
    CanonicalJsonObject, EventId, OwnedEventId, OwnedRoomId, RoomId, ServerName, UInt,
    api::federation::event::{get_event, get_missing_events, get_room_state, get_room_state_ids},
    canonical_json::redact,
    room_version_rules::RoomVersionRules,
    signatures::Verified,
};
use serde_json::value::RawValue;

use crate::Federation;

/// How many missing events one `/get_missing_events` asks for.
const MISSING_LIMIT: u32 = 20;
/// At most this many prev events of one PDU get their state fetched (a PDU may name many).
const MAX_STATE_FETCHES: usize = 5;
/// Events of a fetched state this server lacks that are fetched one by one (`/event`); when
/// more are missing, `/state` brings them all at once.
const MAX_EVENT_FETCHES: usize = 50;

/// One PDU's result in a transaction's answer: `Err` with the reason it was not accepted.
pub type PduResult = (OwnedEventId, Result<(), String>);

/// Per room of a transaction: its rules and whether the room's ACL lets the origin in (`None`
/// for a room this server does not know).
type RoomsSeen = HashMap<OwnedRoomId, Option<(RoomVersionRules, Result<(), String>)>>;

/// Checks and stores the PDUs of a transaction from `origin`, in order: each one's event ID and
/// the result the transaction's answer reports. A PDU that is not JSON, or of a room this server
/// does not know (whose version and so event ID it cannot tell), is dropped unanswered.
/// Consecutive PDUs of one room are stored in one write transaction
/// ([`remote::receive_batch`]). With `answering` (the transaction's ID, when storing its PDUs
/// is all there is to it), the write that stores the last of them also records the
/// transaction's answer; whether one did.
pub async fn transaction_pdus(
    fed: &Federation,
    origin: &ServerName,
    raws: &[Box<RawValue>],
    answering: Option<&str>,
) -> (Vec<PduResult>, bool) {
    let mut rooms_seen = RoomsSeen::new();
    let mut results = Vec::with_capacity(raws.len());
    // Verified PDUs of the room being gathered, not stored yet.
    let mut run: Vec<Pdu> = Vec::new();
    for raw in raws {
        let Some((event_id, checked)) = check(fed, origin, raw, &mut rooms_seen).await else { continue };
        match checked {
            Ok(pdu) => {
                if run.first().is_some_and(|first| first.room_id != pdu.room_id) {
                    results.extend(receive_run(fed, origin, std::mem::take(&mut run), None).await.0);
                }
                run.push(pdu);
            }
            Err(e) => {
                results.extend(receive_run(fed, origin, std::mem::take(&mut run), None).await.0);
                results.push((event_id, Err(e)));
            }
        }
    }
    let (last, recorded) =
        receive_run(fed, origin, run, answering.map(|txn_id| (txn_id, &results[..]))).await;
    results.extend(last);
    (results, recorded)
}

/// Format, room, ACL and signature checks of one PDU: its event ID and the verified event, or
/// why it is refused; `None` to drop it unanswered. `rooms_seen` keeps each room's rules and
/// ACL verdict for the rest of the transaction.
async fn check(
    fed: &Federation,
    origin: &ServerName,
    raw: &RawValue,
    rooms_seen: &mut RoomsSeen,
) -> Option<(OwnedEventId, Result<Pdu, String>)> {
    let object: CanonicalJsonObject = serde_json::from_str(raw.get()).ok()?;
    let room_id = RoomId::parse(object.get("room_id")?.as_str()?).ok()?;
    let seen = match rooms_seen.get(&room_id) {
        Some(seen) => seen.clone(),
        None => {
            // The room's cached head knows its rules; only a room not cached costs a query.
            let rules = match fed.hs().room_cache().head(&room_id) {
                Some(head) => Some(head.rules.clone()),
                None => rooms::version(fed.hs().db().pool(), &room_id).await.ok()?.and_then(|v| v.rules()),
            };
            let seen = match rules {
                // A server the room's ACL denies is ignored (spec: Server Access Control Lists).
                Some(rules) => Some((
                    rules,
                    server_acl::check(fed.hs(), &room_id, origin).await.map_err(|e| e.to_string()),
                )),
                None => None,
            };
            rooms_seen.insert(room_id, seen.clone());
            seen
        }
    };
    let (rules, allowed) = seen?;
    let event_id = event_id(&object, &rules).ok()?;
    let checked = match allowed {
        Ok(()) => verify(fed, object, &rules).await,
        Err(e) => Err(e),
    };
    Some((event_id, checked))
}

/// Stores `run`, verified PDUs of one room, in order: in batches, each stopping at a PDU that
/// names events this server lacks, which then takes the one-event path that fetches them. A
/// batch that fails as a whole is retried one event at a time. With `answering` (the
/// transaction's ID and the results before `run`, the transaction's last PDUs), a batch that
/// takes in the rest of `run` records the transaction's answer; whether one did.
async fn receive_run(
    fed: &Federation,
    origin: &ServerName,
    run: Vec<Pdu>,
    answering: Option<(&str, &[PduResult])>,
) -> (Vec<PduResult>, bool) {
    let mut results = Vec::with_capacity(run.len());
    let mut rest: &[Pdu] = &run;
    let mut recorded = false;
    while !rest.is_empty() {
        let batch: Vec<&Pdu> = rest.iter().collect();
        let render = |received: &[Received]| {
            let complete =
                received.len() == rest.len() && !received.iter().any(|r| matches!(r, Received::Missing(_)));
            let this =
                rest.iter().zip(received).map(|(pdu, r)| (pdu.event_id.clone(), outcome_result(r.clone())));
            let earlier = answering?.1.iter().chain(&results).cloned();
            complete.then(|| crate::transactions::answer_json(earlier.chain(this))).flatten()
        };
        let answer =
            answering.map(|(txn_id, _)| TxnAnswer { origin: origin.as_str(), txn_id, render: &render });
        let received = match remote::receive_batch_answering(fed.hs(), &batch, answer.as_ref()).await {
            Ok((received, answered)) => {
                recorded |= answered;
                received
            }
            Err(e) => {
                tracing::warn!(%origin, error = %e, "a batch of received events failed; retrying one by one");
                for pdu in rest {
                    results.push((pdu.event_id.clone(), receive(fed, origin, pdu, true).await));
                }
                break;
            }
        };
        for (pdu, outcome) in rest.iter().zip(&received) {
            let result = match outcome {
                Received::Missing(_) => receive(fed, origin, pdu, true).await,
                other => outcome_result(other.clone()),
            };
            results.push((pdu.event_id.clone(), result));
        }
        rest = &rest[received.len().max(1).min(rest.len())..];
    }
    (results, recorded)
}

/// What the transaction's answer says of an event core took in (or not).
fn outcome_result(received: Received) -> Result<(), String> {
    match received {
        Received::Accepted | Received::Known | Received::SoftFailed(_) => Ok(()),
        Received::Rejected(reason) => Err(reason),
        Received::Missing(ids) => Err(format!("missing events: {ids:?}")),
    }
}

/// The event ID of a PDU of a room with `rules`: its reference hash.
pub fn event_id(object: &CanonicalJsonObject, rules: &RoomVersionRules) -> Result<OwnedEventId, String> {
    let hash = ruma::signatures::reference_hash(object, rules).map_err(|e| e.to_string())?;
    OwnedEventId::try_from(format!("${hash}")).map_err(|e| e.to_string())
}

/// Verifies a PDU's signatures (an error when they fail) and content hash (redacted when it
/// does not match), then parses it.
pub async fn verify(
    fed: &Federation,
    object: CanonicalJsonObject,
    rules: &RoomVersionRules,
) -> Result<Pdu, String> {
    let object = match fed.keys().verify_event(&object, rules).await {
        Ok(Verified::All) => object,
        Ok(Verified::Signatures) => redact(object, &rules.redaction, None).map_err(|e| e.to_string())?,
        Err(e) => return Err(format!("signature check failed: {e}")),
    };
    Pdu::from_federation(object, rules)
}

/// Hands a verified PDU to core; when prev events are missing and `fetch` is set, asks
/// `origin` for them first and tries again.
async fn receive(fed: &Federation, origin: &ServerName, pdu: &Pdu, fetch: bool) -> Result<(), String> {
    match remote::receive(fed.hs(), pdu).await.map_err(|e| e.to_string())? {
        Received::Missing(_) if fetch => {
            fetch_missing(fed, origin, pdu).await?;
            match remote::receive(fed.hs(), pdu).await.map_err(|e| e.to_string())? {
                Received::Missing(_) => {
                    // A gap /get_missing_events did not fill: take the state at each unknown prev
                    // event from the sender, then the event once more.
                    for prev in pdu.prev_events.iter().take(MAX_STATE_FETCHES) {
                        fetch_state_at(fed, origin, &pdu.room_id, prev).await?;
                    }
                    Box::pin(receive(fed, origin, pdu, false)).await
                }
                other => outcome_result(other),
            }
        }
        other => outcome_result(other),
    }
}

/// Fetches `event_id` and the room's state at it from `origin` (spec: Retrieving events):
/// the event (`/event`), the IDs of the state before it and of its auth chain (`/state_ids`),
/// then those events this server lacks — one by one (`/event`), or all at once (`/state`)
/// when there are many — and hands them to core, which checks every one before the state may
/// stand (`rooms::remote_state`). Nothing happens when this server has that event with its
/// state.
async fn fetch_state_at(
    fed: &Federation,
    origin: &ServerName,
    room_id: &RoomId,
    event_id: &EventId,
) -> Result<(), String> {
    if remote::has_state_after(fed.hs(), event_id).await.map_err(|e| e.to_string())? {
        return Ok(());
    }
    let rules = remote::rules(fed.hs(), room_id).await.map_err(|e| e.to_string())?;
    let prev = fetch_event(fed, origin, room_id, event_id, &rules).await?;
    let request = get_room_state_ids::v1::Request::new(event_id.to_owned(), room_id.to_owned());
    let ids = fed
        .client()
        .send(origin, request)
        .await
        .map_err(|e| format!("fetching the state at {event_id}: {e}"))?;
    let mut wanted: Vec<OwnedEventId> =
        ids.pdu_ids.iter().chain(&ids.auth_chain_ids).chain(&prev.auth_events).cloned().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let unknown = remote_state::unknown_among(fed.hs(), &wanted).await.map_err(|e| e.to_string())?;
    let fetched = if unknown.len() > MAX_EVENT_FETCHES {
        let request = get_room_state::v1::Request::new(event_id.to_owned(), room_id.to_owned());
        let state = fed
            .client()
            .send(origin, request)
            .await
            .map_err(|e| format!("fetching the state at {event_id}: {e}"))?;
        let unknown: HashSet<&OwnedEventId> = unknown.iter().collect();
        let mut all = verified_all(fed, &state.pdus, &rules).await;
        all.extend(verified_all(fed, &state.auth_chain, &rules).await);
        all.retain(|pdu| unknown.contains(&pdu.event_id));
        all
    } else {
        let fetches = unknown.iter().map(|id| fetch_event(fed, origin, room_id, id, &rules));
        let fetched = futures::future::join_all(fetches).await;
        fetched
            .into_iter()
            .filter_map(|result| {
                result
                    .map_err(|e| tracing::info!(%origin, error = %e, "dropping an event of a fetched state"))
                    .ok()
            })
            .collect()
    };
    remote_state::store_with_state(fed.hs(), &prev, &ids.pdu_ids, &fetched).await.map_err(|e| e.to_string())
}

/// Fetches the event `event_id` of `room_id` from `origin` (`/event`), verified.
async fn fetch_event(
    fed: &Federation,
    origin: &ServerName,
    room_id: &RoomId,
    event_id: &EventId,
    rules: &RoomVersionRules,
) -> Result<Pdu, String> {
    let fetched = fed.client().send(origin, get_event::v1::Request::new(event_id.to_owned())).await;
    let raw = fetched.map_err(|e| format!("fetching {event_id}: {e}"))?.pdu;
    let object: CanonicalJsonObject = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let pdu = verify(fed, object, rules).await?;
    if pdu.event_id != event_id || pdu.room_id != room_id {
        return Err(format!("{origin} answered another event for {event_id}"));
    }
    Ok(pdu)
}

/// The events of `raws` whose signatures verify (content hashes failing: redacted).
pub async fn verified_all(fed: &Federation, raws: &[Box<RawValue>], rules: &RoomVersionRules) -> Vec<Pdu> {
    let mut pdus = Vec::with_capacity(raws.len());
    for raw in raws {
        let Ok(object) = serde_json::from_str::<CanonicalJsonObject>(raw.get()) else { continue };
        match verify(fed, object, rules).await {
            Ok(pdu) => pdus.push(pdu),
            Err(e) => tracing::info!(error = %e, "dropping an event of a fetched state"),
        }
    }
    pdus
}

/// Fetches the events between the room's forward extremities and `pdu` from `origin`
/// (spec: `POST /get_missing_events`) and takes them in, oldest first. Events from before this
/// server last joined the room through another server (below [`remote::history_floor`]) are
/// not asked for, and dropped if sent anyway: they would join the timeline after the join,
/// as if no gap were there; the state at the event crosses that gap instead.
async fn fetch_missing(fed: &Federation, origin: &ServerName, pdu: &Pdu) -> Result<(), String> {
    let earliest = remote::extremities(fed.hs(), &pdu.room_id).await.map_err(|e| e.to_string())?;
    let floor = remote::history_floor(fed.hs(), &pdu.room_id).await.map_err(|e| e.to_string())?;
    let mut request =
        get_missing_events::v1::Request::new(pdu.room_id.clone(), earliest, vec![pdu.event_id.clone()]);
    request.limit = UInt::from(MISSING_LIMIT);
    request.min_depth = UInt::try_from(floor).unwrap_or_default();
    let response =
        fed.client().send(origin, request).await.map_err(|e| format!("fetching missing events: {e}"))?;
    let rules = remote::rules(fed.hs(), &pdu.room_id).await.map_err(|e| e.to_string())?;
    let mut missing = Vec::with_capacity(response.events.len());
    for raw in response.events {
        let Ok(object) = serde_json::from_str::<CanonicalJsonObject>(raw.get()) else { continue };
        match verify(fed, object, &rules).await {
            Ok(event) if event.room_id == pdu.room_id && i64::from(event.depth) >= floor => {
                missing.push(event)
            }
            Ok(_) => {}
            Err(e) => tracing::info!(%origin, error = %e, "dropping a fetched event"),
        }
    }
    missing.sort_by_key(|event| event.depth);
    for event in &missing {
        if let Err(e) = Box::pin(receive(fed, origin, event, false)).await {
            tracing::info!(%origin, event_id = %event.event_id, error = %e, "a fetched event was not accepted");
        }
    }
    Ok(())
}
