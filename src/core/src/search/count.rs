//! `count` of `POST /search` (spec: "an approximate count of the total number of results
//! found"): the newest matches are counted exactly, up to a cap, and the total is extrapolated
//! from how far back in the stream they reach.

use crate::storage::search::{RoomScope, WholeRooms};

/// The lowest stream position searched: the stream's start when a room is read in full, else
/// where the first readable range of a room read in part starts.
pub fn lowest_position(whole: &WholeRooms, partial: &[RoomScope]) -> i64 {
    let partial_low = partial.iter().filter_map(|r| r.ranges.first()).map(|r| r.0).min();
    match (whole, partial_low) {
        (WholeRooms::Only(rooms), Some(low)) if rooms.is_empty() => low,
        _ => 1,
    }
}

/// The newest matches counted: how many and the oldest one's stream position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    hits: i64,
    oldest: Option<i64>,
}

impl Counted {
    /// Counts the stream positions of the newest matches.
    pub fn of(positions: impl Iterator<Item = i64>) -> Counted {
        positions.fold(Counted { hits: 0, oldest: None }, |c, p| Counted {
            hits: c.hits + 1,
            oldest: Some(c.oldest.map_or(p, |o| o.min(p))),
        })
    }
}

/// The total count from the newest `counted` matches (at most `cap`): exact when fewer than `cap`
/// matched, else extrapolated over the positions searched (`lowest`..=`upto`) from the share of
/// them the counted matches span.
pub fn estimate_count(counted: Counted, cap: i64, lowest: i64, upto: i64) -> u64 {
    let hits = u64::try_from(counted.hits).unwrap_or(0);
    match counted.oldest {
        Some(oldest) if counted.hits >= cap && oldest > lowest => {
            let spanned = (upto - oldest + 1).max(1) as f64;
            let searched = (upto - lowest + 1).max(1) as f64;
            (hits as f64 * searched / spanned).round() as u64
        }
        _ => hits,
    }
}

#[cfg(test)]
mod tests {
    use super::{Counted, estimate_count};

    #[test]
    fn counts_are_exact_below_the_cap_and_extrapolated_above() {
        let exact = Counted { hits: 7, oldest: Some(500) };
        assert_eq!(estimate_count(exact, 10, 1, 1_000), 7);
        // The 10 newest matches span the newest tenth of the positions searched.
        let capped = Counted { hits: 10, oldest: Some(901) };
        assert_eq!(estimate_count(capped, 10, 1, 1_000), 100);
        // Reaching back to the start, the cap is the count.
        let all = Counted { hits: 10, oldest: Some(1) };
        assert_eq!(estimate_count(all, 10, 1, 1_000), 10);
        assert_eq!(estimate_count(Counted { hits: 0, oldest: None }, 10, 1, 1_000), 0);
    }
}
