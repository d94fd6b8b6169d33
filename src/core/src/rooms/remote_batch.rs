//! What a batch of received events shares (see [`super::remote::receive_batch`]): the facts
//! about stored events it looks up once for all of them, and the accepted message events it
//! holds back to write together. A transaction from another server brings up to 50 events; at
//! several statements each, the round trips to the database were most of their cost.

use std::collections::{HashMap, HashSet};

use super::{Pdu, RoomHead, timeline_batch};
use crate::{
    Homeserver, Result,
    push::evaluate::Notifications,
    storage::{WriteTx, events},
};

/// Which of the batch's events, and of the auth events they cite, are stored here, and which of
/// those were rejected: one statement for the batch, kept true as the batch stores events.
pub(super) struct Facts {
    known: HashSet<String>,
    rejected: HashSet<String>,
}

impl Facts {
    /// Looks up the events of `pdus` and their auth events.
    pub(super) async fn load(tx: &mut WriteTx, pdus: &[&Pdu]) -> Result<Facts> {
        let mut ids: Vec<&str> = pdus
            .iter()
            .flat_map(|pdu| std::iter::once(&pdu.event_id).chain(&pdu.auth_events))
            .map(|id| id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let (mut known, mut rejected) = (HashSet::new(), HashSet::new());
        for (id, was_rejected) in events::stored_among(tx, &ids).await? {
            if was_rejected {
                rejected.insert(id.clone());
            }
            known.insert(id);
        }
        Ok(Facts { known, rejected })
    }

    /// Whether `event_id` is stored here.
    pub(super) fn known(&self, event_id: &str) -> bool {
        self.known.contains(event_id)
    }

    /// Those of `event_ids` stored as rejected.
    pub(super) fn rejected_among(&self, event_ids: &[&str]) -> Vec<String> {
        event_ids.iter().filter(|id| self.rejected.contains(**id)).map(|id| (*id).to_owned()).collect()
    }

    /// Records that the batch stored `event_id` (rejected or not).
    pub(super) fn stored(&mut self, event_id: &str, rejected: bool) {
        if rejected {
            self.rejected.insert(event_id.to_owned());
        }
        self.known.insert(event_id.to_owned());
    }
}

/// Accepted message events that follow the room's head one after the other, not written yet.
/// The head moves past each in memory (its extremity's nid is 0 until written); they are
/// written together ([`timeline_batch::write`]) before anything else of the batch is, and at
/// its end.
#[derive(Default)]
pub(super) struct Held<'a> {
    events: Vec<(&'a Pdu, String, Notifications)>,
    /// The head's extremities before the first of them.
    first_extremity: Vec<(i64, String)>,
}

impl<'a> Held<'a> {
    /// Whether `event_id` is held, not written yet.
    pub(super) fn holds(&self, event_id: &str) -> bool {
        self.events.iter().any(|(pdu, _, _)| pdu.event_id.as_str() == event_id)
    }

    /// Holds `pdu`, accepted on `head`, which notifies `push`, and moves `head` past it.
    pub(super) fn hold(&mut self, head: &mut RoomHead, pdu: &'a Pdu, push: Notifications) -> Result<()> {
        let json = serde_json::to_string(&pdu.json).map_err(|e| crate::Error::Internal(e.into()))?;
        if self.events.is_empty() {
            self.first_extremity = head.prev_events.clone();
        }
        self.events.push((pdu, json, push));
        head.prev_events = vec![(0, pdu.event_id.to_string())];
        head.depth = head.depth.max(i64::from(pdu.depth));
        Ok(())
    }

    /// Writes the held events and gives `head` its extremity's nid.
    pub(super) async fn write(
        &mut self,
        hs: &Homeserver,
        tx: &mut WriteTx,
        head: &mut RoomHead,
    ) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let entries: Vec<timeline_batch::Entry<'_>> = self
            .events
            .iter()
            .map(|(pdu, json, push)| timeline_batch::Entry {
                pdu,
                json,
                depth: i64::from(pdu.depth),
                state_group: head.state_group,
                push,
            })
            .collect();
        let first_extremity =
            HashMap::from([(head.room_id.clone(), std::mem::take(&mut self.first_extremity))]);
        let extremities = timeline_batch::write(hs, tx, &entries, &first_extremity).await?;
        if let Some(extremity) = extremities.into_values().next() {
            head.prev_events = vec![extremity];
        }
        self.events.clear();
        Ok(())
    }
}
