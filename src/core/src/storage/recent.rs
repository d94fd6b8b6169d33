//! The newest timeline events of each room, in memory, as the event stream committed them: a
//! woken `/sync` (or WebSocket) reads its timeline rows here instead of asking the database,
//! which for a message to a room of N members saves N queries.
//!
//! A room's events are recorded before readers' `upto` passes them (as the
//! [`Activity`](super::activity::Activity) is), so every accepted event of a room above its
//! `above` mark and the floor is here once readable. A room keeps its newest [`PER_ROOM`] events;
//! dropping older ones raises its mark. An event whose write changes another event's row (a
//! redaction) comes without a row and raises the mark past itself, so windows reaching below it
//! read the database. Past [`TOTAL`] events in all, everything is dropped and the floor moves
//! to the newest position seen.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use ruma::{OwnedRoomId, RoomId};

use super::{events::StoredEvent, positions::Written};

/// Events kept per room: a sync timeline is 10 events by default.
const PER_ROOM: usize = 32;
/// Events kept in all (each the size of its JSON).
const TOTAL: usize = 10_000;

/// The recent events of every room; one per database.
#[derive(Default)]
pub struct RecentEvents(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// Windows starting below this position are not answered.
    floor: i64,
    /// The highest position recorded.
    newest: i64,
    rooms: HashMap<OwnedRoomId, Ring>,
    total: usize,
}

#[derive(Default)]
struct Ring {
    /// Every accepted event of the room above this position is in `events`.
    above: i64,
    events: BTreeMap<i64, Arc<StoredEvent>>,
}

impl RecentEvents {
    /// Windows starting at or above `position` can be answered.
    pub(super) fn start_at(&self, position: i64) {
        let mut inner = self.lock();
        inner.floor = inner.floor.max(position);
    }

    /// Records committed events; `undescribed` as for the activity.
    pub(super) fn record(&self, written: &[Written], undescribed: Option<i64>) {
        let mut inner = self.lock();
        if let Some(position) = undescribed {
            inner.floor = inner.floor.max(position);
        }
        for w in written {
            inner.newest = inner.newest.max(w.position);
            let ring = inner.rooms.entry(w.room_id.clone()).or_default();
            let (added, dropped) = match &w.event {
                Some(event) => {
                    ring.events.insert(w.position, event.clone());
                    let mut dropped = 0;
                    if ring.events.len() > PER_ROOM
                        && let Some((position, _)) = ring.events.pop_first()
                    {
                        ring.above = ring.above.max(position);
                        dropped = 1;
                    }
                    (1, dropped)
                }
                None => {
                    ring.above = ring.above.max(w.position);
                    let kept = ring.events.split_off(&(w.position + 1));
                    let dropped = std::mem::replace(&mut ring.events, kept).len();
                    (0, dropped)
                }
            };
            inner.total = inner.total + added - dropped;
        }
        if inner.total > TOTAL {
            inner.floor = inner.floor.max(inner.newest);
            inner.rooms.clear();
            inner.total = 0;
        }
    }

    /// The newest `n` accepted events of `room_id` in `(after, upto]`, newest first, as
    /// [`latest_events`](super::sync::latest_events) reads them; `None` when some may be
    /// missing here.
    pub fn window(&self, room_id: &RoomId, after: i64, upto: i64, n: usize) -> Option<Vec<StoredEvent>> {
        if upto <= after {
            return Some(Vec::new());
        }
        let inner = self.lock();
        if after < inner.floor {
            return None;
        }
        let Some(ring) = inner.rooms.get(room_id) else {
            // Nothing written in the room since the floor.
            return Some(Vec::new());
        };
        if after < ring.above {
            return None;
        }
        let range = ring.events.range(after + 1..=upto);
        Some(range.rev().take(n).map(|(_, event)| (**event).clone()).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for map operations only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> OwnedRoomId {
        "!r:x".try_into().expect("room id")
    }

    fn written(position: i64, with_row: bool) -> Written {
        let event = StoredEvent {
            event_nid: position,
            event_id: format!("$e{position}"),
            room_id: room().to_string(),
            json: "{}".to_owned(),
            stream_ordering: Some(position),
            state_group: Some(1),
            redacted_by: None,
        };
        Written { position, room_id: room(), member: None, event: with_row.then(|| Arc::new(event)) }
    }

    fn positions(rows: Option<Vec<StoredEvent>>) -> Option<Vec<i64>> {
        rows.map(|rows| rows.iter().filter_map(|row| row.stream_ordering).collect())
    }

    #[test]
    fn a_window_is_answered_newest_first_whatever_the_commit_order() {
        let recent = RecentEvents::default();
        recent.start_at(10);
        recent.record(&[written(12, true)], None);
        recent.record(&[written(11, true)], None);

        assert_eq!(positions(recent.window(&room(), 10, 12, 10)), Some(vec![12, 11]));
        assert_eq!(positions(recent.window(&room(), 10, 12, 1)), Some(vec![12]));
        assert_eq!(positions(recent.window(&room(), 11, 11, 10)), Some(vec![]));
        assert_eq!(positions(recent.window(&room(), 12, 11, 10)), Some(vec![]), "an empty window");
        assert_eq!(positions(recent.window(&room(), 9, 12, 10)), None, "below the floor");
        let other: OwnedRoomId = "!other:x".try_into().expect("room id");
        assert_eq!(positions(recent.window(&other, 10, 12, 10)), Some(vec![]));
    }

    #[test]
    fn an_event_without_a_row_and_dropped_events_send_older_windows_to_the_database() {
        let recent = RecentEvents::default();
        recent.record(&[written(1, true), written(2, false), written(3, true)], None);
        assert_eq!(positions(recent.window(&room(), 1, 3, 10)), None, "the redaction at 2 changed a row");
        assert_eq!(positions(recent.window(&room(), 2, 3, 10)), Some(vec![3]));

        let many: Vec<Written> = (4..4 + PER_ROOM as i64).map(|p| written(p, true)).collect();
        recent.record(&many, None);
        assert_eq!(positions(recent.window(&room(), 2, 40, 100)), None, "3 was dropped");
        assert_eq!(positions(recent.window(&room(), 3, 40, 100)).map(|p| p.len()), Some(PER_ROOM));
    }
}
