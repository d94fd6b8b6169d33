//! Rows of a room's timeline read ahead by `/sync` for many rooms at once, which answer the
//! pages and state group look-ups of [`super::history`] without a query when they cover them.

use crate::storage::events;

/// The newest rows of one room's timeline, read ahead for many rooms at once (by `/sync`, see
/// [`crate::storage::sync::latest_events`]): pages and state groups within them are answered
/// without a query.
#[derive(Clone, Copy, Debug)]
pub struct Prefetched<'a> {
    /// The accepted events at or below `upto`, newest first, without gaps.
    pub rows: &'a [events::StoredEvent],
    /// The position they were read at or below.
    pub upto: i64,
    /// The position they were read above (0: from the room's start).
    pub above: i64,
    /// Whether they are all the room has above `above` and at or below `upto`.
    pub complete: bool,
}

impl Prefetched<'_> {
    /// [`events::timeline_page`] backwards, if the rows answer it: up to `limit` rows strictly
    /// between `after` and `before`, newest first.
    pub(super) fn page_backwards(
        &self,
        after: i64,
        before: i64,
        limit: usize,
    ) -> Option<&[events::StoredEvent]> {
        if before > self.upto.saturating_add(1) {
            return None;
        }
        let position = |row: &events::StoredEvent| row.stream_ordering.unwrap_or(i64::MIN);
        let first = self.rows.partition_point(|row| position(row) >= before);
        let end = self.rows.partition_point(|row| position(row) > after);
        let found = &self.rows[first..end.max(first)];
        // Rows below the oldest one read may be missing, unless a row at or below `after` shows
        // the range was covered.
        (found.len() >= limit || (self.complete && after >= self.above) || end < self.rows.len())
            .then(|| &found[..limit.min(found.len())])
    }

    /// The state group after the event at `position`, if it is among the rows.
    pub fn state_group_of(&self, position: i64) -> Option<i64> {
        self.rows.iter().find(|row| row.stream_ordering == Some(position)).and_then(|row| row.state_group)
    }

    /// [`storage::history::state_group_at`](crate::storage::history::state_group_at), if the rows
    /// answer it.
    pub fn state_group_at(&self, position: i64) -> Option<Option<i64>> {
        if position > self.upto {
            return None;
        }
        let found = self
            .rows
            .iter()
            .find(|row| row.stream_ordering.is_some_and(|p| p <= position) && row.state_group.is_some());
        match found {
            Some(row) => Some(row.state_group),
            // No event at all at or below `position`: no state group yet.
            None => (self.complete && self.above == 0).then_some(None),
        }
    }
}
