//! Taking in PDUs from other servers (spec: Server-Server API › Checks performed on receipt of
//! a PDU): format and room version, signatures (dropped on failure), content hash (redacted on
//! failure), then core's auth checks and storage (`hearth_core::rooms::remote`). Prev events
//! this server lacks are fetched from the sending server with `/get_missing_events` first, and
//! when that leaves a gap, the state at them with `/event` and `/state`.

use hearth_core::{
    rooms::{
        Pdu,
        remote::{self, Received},
        remote_join, server_acl,
    },
    storage::rooms,
};
use ruma::{
    CanonicalJsonObject, EventId, OwnedEventId, RoomId, ServerName, UInt,
    api::federation::event::{get_event, get_missing_events, get_room_state},
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

/// Checks and stores one PDU of a transaction from `origin`: its event ID and the result the
/// transaction's answer reports, or `None` for a PDU dropped unanswered (not JSON, or of a room
/// this server does not know, whose version and so event ID it cannot tell).
pub async fn transaction_pdu(
    fed: &Federation,
    origin: &ServerName,
    raw: &RawValue,
) -> Option<(OwnedEventId, Result<(), String>)> {
    let object: CanonicalJsonObject = serde_json::from_str(raw.get()).ok()?;
    let room_id = RoomId::parse(object.get("room_id")?.as_str()?).ok()?;
    let version = rooms::version(fed.hs().db().pool(), &room_id).await.ok()??;
    let rules = version.rules()?;
    let event_id = event_id(&object, &rules).ok()?;
    // A server the room's ACL denies is ignored (spec: Server Access Control Lists).
    if let Err(e) = server_acl::check(fed.hs(), &room_id, origin).await {
        return Some((event_id, Err(e.to_string())));
    }
    let result = match verify(fed, object, &rules).await {
        Ok(pdu) => receive(fed, origin, &pdu, true).await,
        Err(e) => Err(e),
    };
    Some((event_id, result))
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
        Received::Accepted | Received::Known | Received::SoftFailed(_) => Ok(()),
        Received::Rejected(reason) => Err(reason),
        Received::Missing(ids) if !fetch => Err(format!("missing events: {ids:?}")),
        Received::Missing(_) => {
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
                Received::Rejected(reason) => Err(reason),
                _ => Ok(()),
            }
        }
    }
}

/// Fetches `event_id` and the room's state at it from `origin` (`/event`, then `/state`, spec:
/// Retrieving events) and stores them, unless this server has that event with its state.
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
    let fetched = fed.client().send(origin, get_event::v1::Request::new(event_id.to_owned())).await;
    let raw = fetched.map_err(|e| format!("fetching {event_id}: {e}"))?.pdu;
    let object: CanonicalJsonObject = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let prev = verify(fed, object, &rules).await?;
    if prev.event_id != event_id || prev.room_id != room_id {
        return Err(format!("{origin} answered another event for {event_id}"));
    }
    let request = get_room_state::v1::Request::new(event_id.to_owned(), room_id.to_owned());
    let state = fed
        .client()
        .send(origin, request)
        .await
        .map_err(|e| format!("fetching the state at {event_id}: {e}"))?;
    let (pdus, auth_chain) =
        (verified_all(fed, &state.pdus, &rules).await, verified_all(fed, &state.auth_chain, &rules).await);
    remote_join::store_with_state(fed.hs(), &prev, &pdus, &auth_chain).await.map_err(|e| e.to_string())
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
/// (spec: `POST /get_missing_events`) and takes them in, oldest first.
async fn fetch_missing(fed: &Federation, origin: &ServerName, pdu: &Pdu) -> Result<(), String> {
    let earliest = remote::extremities(fed.hs(), &pdu.room_id).await.map_err(|e| e.to_string())?;
    let mut request =
        get_missing_events::v1::Request::new(pdu.room_id.clone(), earliest, vec![pdu.event_id.clone()]);
    request.limit = UInt::from(MISSING_LIMIT);
    let response =
        fed.client().send(origin, request).await.map_err(|e| format!("fetching missing events: {e}"))?;
    let rules = remote::rules(fed.hs(), &pdu.room_id).await.map_err(|e| e.to_string())?;
    let mut missing = Vec::with_capacity(response.events.len());
    for raw in response.events {
        let Ok(object) = serde_json::from_str::<CanonicalJsonObject>(raw.get()) else { continue };
        match verify(fed, object, &rules).await {
            Ok(event) if event.room_id == pdu.room_id => missing.push(event),
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
