//! Serving room events to clients (spec: Client-Server API › Redactions, Aggregations of child
//! events): a redacted event is served stripped by its room version's redaction rules with
//! `unsigned.redacted_because`, and an event with children carries bundled aggregations under
//! `unsigned.m.relations` (`m.thread`, `m.replace`, `m.reference`).
//!
//! Every endpoint that hands room events to a client (`/event`, `/messages`, `/context`,
//! `/relations`, `/threads`, `/sync`…) should pass them through [`client_events`].

use std::{borrow::Cow, collections::HashMap};

use ruma::{
    CanonicalJsonValue, OwnedRoomId, RoomId, UserId,
    canonical_json::{RedactedBecause, redact},
    room_version_rules::RoomVersionRules,
};
use serde_json::{Map, Value, json};

use super::{Pdu, head::rules_for, relations::relates_to, timeline};
use crate::{
    Error, Homeserver, Result,
    storage::{relations, rooms},
};

const AGGREGATED: [&str; 3] = ["m.thread", "m.replace", "m.reference"];
/// Edits looked at for the latest valid one before giving up.
const MAX_EDIT_CANDIDATES: i64 = 20;
/// Longest `m.reference` chunk bundled.
const MAX_REFERENCES: i64 = 100;

/// Which of the events to serve are redacted.
#[derive(Clone, Copy, Debug)]
pub enum Redactions<'a> {
    /// Not known: looked up.
    LookUp,
    /// Known from the rows the events were just read from: event ID → the redaction's ID, for
    /// the redacted ones.
    Known(&'a HashMap<String, String>),
    /// Known, and the rows also showed that no event relates to any of the events: there are
    /// no bundled aggregations to look up.
    KnownUnrelated(&'a HashMap<String, String>),
}

/// The events in the client format, as `viewer` should see them.
pub async fn client_events(hs: &Homeserver, viewer: &UserId, pdus: &[Pdu]) -> Result<Vec<Value>> {
    client_events_with(hs, viewer, pdus, Redactions::LookUp).await
}

/// [`client_events`] when the redactions may be known already.
pub async fn client_events_with(
    hs: &Homeserver,
    viewer: &UserId,
    pdus: &[Pdu],
    redactions: Redactions<'_>,
) -> Result<Vec<Value>> {
    let pdus: Vec<&Pdu> = pdus.iter().collect();
    client_events_of(hs, viewer, &pdus, redactions).await
}

/// [`client_events_with`] of events held elsewhere (such as in the event cache).
pub async fn client_events_of(
    hs: &Homeserver,
    viewer: &UserId,
    pdus: &[&Pdu],
    redactions: Redactions<'_>,
) -> Result<Vec<Value>> {
    let mut server = Server { hs, viewer, rules: HashMap::new() };
    server.serve(pdus, true, redactions).await
}

/// One event in the client format, as `viewer` should see it.
pub async fn client_event(hs: &Homeserver, viewer: &UserId, pdu: &Pdu) -> Result<Value> {
    let mut served = client_events(hs, viewer, std::slice::from_ref(pdu)).await?;
    served.pop().ok_or_else(|| Error::Internal(anyhow::anyhow!("serving an event produced nothing")))
}

struct Server<'a> {
    hs: &'a Homeserver,
    viewer: &'a UserId,
    rules: HashMap<OwnedRoomId, RoomVersionRules>,
}

impl Server<'_> {
    /// Serves `pdus`; `with_threads` is false for a thread's latest event, whose own children
    /// are bundled but which cannot be a thread root itself.
    async fn serve(
        &mut self,
        pdus: &[&Pdu],
        with_threads: bool,
        known: Redactions<'_>,
    ) -> Result<Vec<Value>> {
        let ids: Vec<&str> = pdus.iter().map(|p| p.event_id.as_str()).collect();
        let aggregated: &[&str] = if with_threads { &AGGREGATED } else { &AGGREGATED[1..] };
        let message_ids: Vec<&str> =
            pdus.iter().filter(|p| !p.is_state()).map(|p| p.event_id.as_str()).collect();
        let mut children: HashMap<String, HashMap<String, i64>> = HashMap::new();
        let look_up_children = !matches!(known, Redactions::KnownUnrelated(_));
        let pool = self.hs.db().pool();
        let redacted = match known {
            Redactions::LookUp => {
                Cow::Owned(self.hs.db().events().redactions().redacted_by(pool, &ids).await?)
            }
            Redactions::Known(known) | Redactions::KnownUnrelated(known) => Cow::Borrowed(known),
        };
        if look_up_children {
            let mut conn = pool.acquire().await?;
            for (parent, rel_type, count) in relations::counts(&mut conn, &message_ids, aggregated).await? {
                children.entry(parent).or_default().insert(rel_type, count);
            }
        }

        let mut served = Vec::with_capacity(pdus.len());
        for pdu in pdus {
            let redaction = redacted.get(pdu.event_id.as_str());
            let mut event = match redaction {
                Some(redaction_id) => self.redacted(pdu, redaction_id).await?,
                None => pdu.to_client_value(),
            };
            if let Some(counts) = children.get(pdu.event_id.as_str()) {
                let bundle = self.bundle(pdu, counts, redaction.is_some()).await?;
                if !bundle.is_empty() {
                    insert_unsigned(&mut event, "m.relations", Value::Object(bundle));
                }
            }
            served.push(event);
        }
        Ok(served)
    }

    /// The event stripped by its room's redaction rules, with the redaction that did it.
    async fn redacted(&mut self, pdu: &Pdu, redaction_id: &str) -> Result<Value> {
        let because = match timeline::event_by_id(self.hs, &pdu.room_id, redaction_id).await? {
            Some(redaction) => canonical_object(redaction.to_client_value())?,
            None => Default::default(),
        };
        let rules = self.rules_of(&pdu.room_id).await?;
        let stripped = redact(pdu.json.clone(), &rules.redaction, Some(RedactedBecause::from_json(because)))
            .map_err(|e| Error::Internal(anyhow::anyhow!("redacting {}: {e}", pdu.event_id)))?;
        let pdu = Pdu::from_canonical(pdu.event_id.clone(), stripped, Some(&pdu.room_id))
            .map_err(|e| Error::Internal(anyhow::anyhow!("redacted {}: {e}", pdu.event_id)))?;
        Ok(pdu.to_client_value())
    }

    async fn rules_of(&mut self, room_id: &RoomId) -> Result<&RoomVersionRules> {
        if !self.rules.contains_key(room_id) {
            let version = rooms::version(self.hs.db().pool(), room_id)
                .await?
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("event of unknown room {room_id}")))?;
            self.rules.insert(room_id.to_owned(), rules_for(&version)?);
        }
        self.rules.get(room_id).ok_or_else(|| Error::Internal(anyhow::anyhow!("rules of {room_id}")))
    }

    /// The bundled aggregations of `parent`, given how many children of each type it has.
    async fn bundle(
        &mut self,
        parent: &Pdu,
        counts: &HashMap<String, i64>,
        parent_redacted: bool,
    ) -> Result<Map<String, Value>> {
        let pool = self.hs.db().pool();
        let parent_id = parent.event_id.as_str();
        let mut bundle = Map::new();
        if let Some(count) = counts.get("m.thread")
            && let Some(row) = relations::latest_in_thread(pool, parent_id).await?
        {
            let latest = timeline::parse(&row, &parent.room_id)?;
            // The latest event carries its own aggregations (edits, references), one level only.
            let latest = Box::pin(self.serve(&[&latest], false, Redactions::LookUp)).await?;
            let participated = parent.sender == self.viewer
                || relations::sent_in_thread(pool, parent_id, self.viewer.as_str()).await?;
            bundle.insert(
                "m.thread".to_owned(),
                json!({
                    "latest_event": latest.into_iter().next(),
                    "count": count,
                    "current_user_participated": participated,
                }),
            );
        }
        // A redacted event's edits are not bundled (spec: Event replacements).
        if counts.contains_key("m.replace")
            && !parent_redacted
            && let Some(edit) = self.latest_edit(parent).await?
        {
            bundle.insert("m.replace".to_owned(), edit.to_client_value());
        }
        if counts.contains_key("m.reference") {
            let chunk: Vec<Value> = relations::references(pool, parent_id, MAX_REFERENCES)
                .await?
                .into_iter()
                .map(|event_id| json!({ "event_id": event_id }))
                .collect();
            bundle.insert("m.reference".to_owned(), json!({ "chunk": chunk }));
        }
        Ok(bundle)
    }

    /// The most recent valid replacement of `original` (spec: Validity of replacement events):
    /// same sender and type, neither a state event, the original not itself an edit, and the
    /// replacement carrying `m.new_content`.
    async fn latest_edit(&self, original: &Pdu) -> Result<Option<Pdu>> {
        if original.is_state() || relates_to(&original.content_value()).is_some_and(|r| r.0 == "m.replace") {
            return Ok(None);
        }
        let kind = original.kind.to_string();
        let candidates = relations::replacements(
            self.hs.db().pool(),
            original.event_id.as_str(),
            original.sender.as_str(),
            &kind,
            MAX_EDIT_CANDIDATES,
        )
        .await?;
        for row in &candidates {
            let edit = timeline::parse(row, &original.room_id)?;
            if edit.content_value().get("m.new_content").is_some_and(Value::is_object) {
                return Ok(Some(edit));
            }
        }
        Ok(None)
    }
}

/// Sets `unsigned[key]` on a client event.
fn insert_unsigned(event: &mut Value, key: &str, value: Value) {
    if let Value::Object(object) = event {
        let unsigned = object.entry("unsigned").or_insert_with(|| json!({}));
        if !unsigned.is_object() {
            *unsigned = json!({});
        }
        if let Value::Object(map) = unsigned {
            map.insert(key.to_owned(), value);
        }
    }
}

fn canonical_object(value: Value) -> Result<ruma::CanonicalJsonObject> {
    match CanonicalJsonValue::try_from(value) {
        Ok(CanonicalJsonValue::Object(object)) => Ok(object),
        Ok(_) => Err(Error::Internal(anyhow::anyhow!("a client event is not an object"))),
        Err(e) => Err(Error::Internal(anyhow::anyhow!("stored event is not canonical JSON: {e}"))),
    }
}
