//! Positions in the room event stream: handed out in memory, and tracked until their transaction
//! commits or rolls back, so readers know the highest position below which every write has
//! committed (DESIGN §3: an incremental sync never skips an event written concurrently with it).
//!
//! Positions are counted in memory (starting from the highest stored one) on both backends, so
//! handing one out and marking it in flight is one atomic step; a PostgreSQL sequence could
//! hand out a position that commits before a lower one was even registered. This assumes one
//! writing process per database, as the process-local room write locks already do.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicI64, Ordering},
    },
};

use ruma::{OwnedRoomId, OwnedUserId};

use super::{
    activity::Activity,
    events::StoredEvent,
    recent::RecentEvents,
    redactions::RedactionCache,
    unread_log::{UnreadLog, UnreadNote},
};

/// One event written in a transaction, reported to the commit hook once it committed.
#[derive(Clone, Debug)]
pub struct Written {
    /// Its position in the event stream.
    pub position: i64,
    /// Its room.
    pub room_id: OwnedRoomId,
    /// The target of a membership event (whose room list changes).
    pub member: Option<OwnedUserId>,
    /// Its row, for the room's [`RecentEvents`]; `None` when the write also changed another
    /// event's row (a redaction), which sends windows reaching below it to the database.
    pub event: Option<Arc<StoredEvent>>,
}

/// Called after a transaction ended: what it committed (empty after a rollback) and the new
/// highest position below which everything committed.
pub type CommitHook = Box<dyn Fn(Vec<Written>, i64) + Send + Sync>;

/// The event stream's positions of one database.
#[derive(Default)]
pub struct EventPositions {
    state: Mutex<State>,
    /// Every position at or below this one has committed or rolled back.
    upto: AtomicI64,
    hook: OnceLock<CommitHook>,
    /// What was committed since this process started.
    activity: Activity,
    /// The newest events of each room.
    recent: RecentEvents,
    /// How each room's recent events notified its members.
    unread: UnreadLog,
    /// Which events are redacted.
    redactions: RedactionCache,
    /// The lowest backfill position handed out (0 before any).
    lowest: AtomicI64,
}

#[derive(Default)]
struct State {
    last: i64,
    in_flight: BTreeSet<i64>,
}

impl EventPositions {
    /// Starts counting after `last`, the highest stored position.
    pub(super) fn start_after(&self, last: i64) {
        let mut state = self.lock();
        state.last = state.last.max(last);
        self.upto.fetch_max(last, Ordering::SeqCst);
        self.activity.start_at(state.last);
        self.recent.start_at(state.last);
        self.unread.start_at(state.last);
    }

    /// Hands out backfill positions below `lowest`, the lowest stored position (or 0).
    pub(super) fn start_backfill_below(&self, lowest: i64) {
        self.lowest.fetch_min(lowest, Ordering::SeqCst);
    }

    /// The next `n` backfill positions, descending: each below every position handed out before.
    /// They need no tracking in flight: readers only look past `upto` going forwards, and no
    /// sync reads below 1, so a backfill becomes visible whole when it commits.
    pub(super) fn take_backfill(&self, n: usize) -> Vec<i64> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let last = self.lowest.fetch_sub(n, Ordering::SeqCst);
        (1..=n).map(|i| last - i).collect()
    }

    /// Skips the next `n` positions without taking them; returns the lowest. Nothing is in
    /// flight there, so `upto` may pass them at once.
    fn reserve(&self, n: usize) -> i64 {
        let mut state = self.lock();
        let first = state.last + 1;
        state.last = state.last.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        first
    }

    /// What was committed since this process started, in memory.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The newest events of each room, in memory.
    pub fn recent(&self) -> &RecentEvents {
        &self.recent
    }

    /// How each room's recent events notified its members, in memory.
    pub fn unread(&self) -> &UnreadLog {
        &self.unread
    }

    /// Which events are redacted, as far as remembered.
    pub fn redactions(&self) -> &RedactionCache {
        &self.redactions
    }

    /// Sets the function told about every commit (the notifier's).
    pub fn set_hook(&self, hook: CommitHook) {
        // A second hook would be a wiring bug; the first one stays.
        let _ = self.hook.set(hook);
    }

    /// The highest position at or below which every write has committed.
    pub fn upto(&self) -> i64 {
        self.upto.load(Ordering::SeqCst)
    }

    /// Hands out the next `n` positions, in flight until released.
    fn take(&self, n: usize) -> Vec<i64> {
        let mut state = self.lock();
        let first = state.last + 1;
        state.last += i64::try_from(n).unwrap_or(i64::MAX);
        let positions: Vec<i64> = (first..=state.last).collect();
        state.in_flight.extend(&positions);
        positions
    }

    /// Ends `positions`' flight (committed or rolled back) and advances `upto`.
    fn release(&self, written: Vec<Written>, notes: &[UnreadNote], positions: &[i64], committed: bool) {
        let upto = {
            let mut state = self.lock();
            if committed {
                // Recorded before `upto` passes these positions: a reader that sees them
                // readable also finds them in the activity.
                let described: BTreeSet<i64> = written.iter().map(|w| w.position).collect();
                let undescribed = positions.iter().filter(|p| !described.contains(p)).max().copied();
                self.activity.record(&written, undescribed);
                self.recent.record(&written, undescribed);
                self.unread.record(&written, notes, undescribed);
            }
            for p in positions {
                state.in_flight.remove(p);
            }
            let upto = state.in_flight.first().map_or(state.last, |first| first - 1);
            self.upto.fetch_max(upto, Ordering::SeqCst);
            upto
        };
        if let Some(hook) = self.hook.get() {
            hook(written, upto);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Held for a few integer operations, never across an await.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The positions a write transaction took, released when it ends.
pub(super) struct Held {
    tracker: Arc<EventPositions>,
    positions: Vec<i64>,
    written: Vec<Written>,
    notes: Vec<UnreadNote>,
    committed: bool,
}

impl Held {
    pub(super) fn new(tracker: Arc<EventPositions>) -> Held {
        Held { tracker, positions: Vec::new(), written: Vec::new(), notes: Vec::new(), committed: false }
    }

    /// Takes `n` backfill positions (see [`EventPositions::take_backfill`]).
    pub(super) fn take_backfill(&self, n: usize) -> Vec<i64> {
        self.tracker.take_backfill(n)
    }

    /// Sets `n` positions aside (see [`EventPositions::reserve`]); returns the lowest.
    pub(super) fn reserve(&self, n: usize) -> i64 {
        self.tracker.reserve(n)
    }

    /// Takes `n` positions.
    pub(super) fn take(&mut self, n: usize) -> Vec<i64> {
        let positions = self.tracker.take(n);
        self.positions.extend(&positions);
        positions
    }

    /// Records what an event at `position` changes, for the commit hook.
    pub(super) fn record(&mut self, written: Written) {
        self.written.push(written);
    }

    /// Records how an event notified, or a state move, for the unread log.
    pub(super) fn note_unread(&mut self, note: UnreadNote) {
        self.notes.push(note);
    }

    pub(super) fn mark_committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // After the commit (or the rollback: whether a failed commit took effect is not known);
        // backfilled redactions hold no positions in flight but change rows too.
        if self.written.iter().any(|w| w.event.is_none()) {
            self.tracker.redactions.forget();
        }
        if self.positions.is_empty() {
            return;
        }
        let written = if self.committed { std::mem::take(&mut self.written) } else { Vec::new() };
        self.tracker.release(written, &self.notes, &self.positions, self.committed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upto_waits_for_the_lowest_position_still_in_flight() {
        let tracker = Arc::new(EventPositions::default());
        tracker.start_after(10);
        let mut first = Held::new(tracker.clone());
        let mut second = Held::new(tracker.clone());
        assert_eq!(first.take(2), [11, 12]);
        assert_eq!(second.take(1), [13]);

        second.mark_committed();
        drop(second);
        assert_eq!(tracker.upto(), 10, "13 committed but 11 and 12 are still in flight");

        drop(first); // rolled back
        assert_eq!(tracker.upto(), 13);
    }

    #[test]
    fn backfill_positions_descend_below_every_stored_one() {
        let tracker = Arc::new(EventPositions::default());
        tracker.start_after(10);
        tracker.start_backfill_below(-3);
        assert_eq!(tracker.take_backfill(2), [-4, -5]);
        assert_eq!(tracker.take_backfill(1), [-6]);
        assert_eq!(tracker.upto(), 10, "backfill positions are never in flight");
    }

    #[test]
    fn reserved_positions_are_skipped_and_never_in_flight() {
        let tracker = Arc::new(EventPositions::default());
        tracker.start_after(10);
        let mut held = Held::new(tracker.clone());
        assert_eq!(held.reserve(5), 11);
        assert_eq!(held.take(1), [16], "the next position is above the block");
        assert_eq!(tracker.upto(), 10);
        held.mark_committed();
        drop(held);
        assert_eq!(tracker.upto(), 16);
    }

    #[test]
    fn the_hook_hears_only_committed_events() {
        let tracker = Arc::new(EventPositions::default());
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        tracker.set_hook(Box::new(move |written, upto| {
            sink.lock().expect("lock").push((written.len(), upto));
        }));
        let room: OwnedRoomId = "!r:x".try_into().expect("room id");
        for commit in [false, true] {
            let mut held = Held::new(tracker.clone());
            let position = held.take(1)[0];
            held.record(Written { position, room_id: room.clone(), member: None, event: None });
            if commit {
                held.mark_committed();
            }
        }
        assert_eq!(*heard.lock().expect("lock"), [(0, 1), (1, 2)]);
    }
}
