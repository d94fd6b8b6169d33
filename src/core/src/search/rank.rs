//! The score behind `rank` order and `results[].rank` (spec: Client-Server API › Server Side
//! Search: "a number that indicates how well each result matches the search term"): BM25's
//! term-frequency saturation and length normalisation (k1 = 1.2, b = 0.75) over the event's
//! searchable words, the same on both databases.
//!
//! It has no IDF factor: every result holds every query word, so IDF would only weigh the words
//! of a query against each other, and it would need each word's document count — a pass over
//! the word's whole posting list (FTS5's `bm25` makes one per query; for a word in most messages
//! that pass alone was ~30 ms at a million messages). The average length is that of the events
//! scored together, so a page's scores depend only on the set of events ranked. The words come
//! from where the index keeps them (`storage::search`), not the events: two thousand event JSONs
//! spread over a long history cost more to read than the search itself.

use super::{index, token::Cursor};
use crate::storage::search::Words;

/// BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// BM25's length normalisation.
const B: f64 = 0.75;

/// A matching event's score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// How well it matches; higher is closer, above 0 for an event that holds the words.
    pub score: f64,
    /// The event's stream position.
    pub stream_ordering: i64,
}

/// Scores `events` for the query `words` (each matching the event's words that begin with it).
pub fn score(events: &[Words], words: &[String]) -> Vec<Scored> {
    let counts: Vec<(usize, Vec<usize>)> = events.iter().map(|event| counts(&event.words, words)).collect();
    let total: usize = counts.iter().map(|(length, _)| length).sum();
    let average = (total as f64 / counts.len().max(1) as f64).max(1.0);
    events
        .iter()
        .zip(counts)
        .map(|(event, (length, frequencies))| {
            let norm = K1 * (1.0 - B + B * length as f64 / average);
            let score = frequencies.iter().map(|&tf| tf as f64 * (K1 + 1.0) / (tf as f64 + norm)).sum();
            Scored { score, stream_ordering: event.stream_ordering }
        })
        .collect()
}

/// An event's number of words and how many of them each query word begins.
fn counts(text: &str, words: &[String]) -> (usize, Vec<usize>) {
    let text = index::words(text);
    let frequencies =
        words.iter().map(|w| text.iter().filter(|t| t.starts_with(w.as_str())).count()).collect();
    (text.len(), frequencies)
}

/// The `limit + 1` best of `scored` after `after` (if given), best first (then newest first).
pub fn best_after(mut scored: Vec<Scored>, after: Option<Cursor>, limit: usize) -> Vec<Scored> {
    let key = |s: &Scored| (s.score, s.stream_ordering);
    scored.sort_by(|a, b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal));
    scored
        .into_iter()
        .filter(|s| after.is_none_or(|c| key(s) < (c.score, c.stream_ordering)))
        .take(limit + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::score;
    use crate::storage::search::Words;

    fn event(position: i64, words: &str) -> Words {
        Words { stream_ordering: position, words: words.to_owned() }
    }

    #[test]
    fn repeated_words_and_short_messages_rank_higher() {
        let events = [
            event(1, "tea with some milk and a biscuit"),
            event(2, "tea please"),
            // Indexed before the words were kept: the text as sent.
            event(3, "Tea, teapots and more tea with friends"),
        ];
        let scores: Vec<f64> = score(&events, &["tea".to_owned()]).iter().map(|s| s.score).collect();
        assert!(scores.iter().all(|s| *s > 0.0), "{scores:?}");
        assert!(scores[1] > scores[0], "shorter is closer: {scores:?}");
        assert!(scores[2] > scores[0], "more often is closer: {scores:?}");
    }

    #[test]
    fn events_without_the_words_score_nothing() {
        assert_eq!(score(&[event(1, "coffee")], &["tea".to_owned()])[0].score, 0.0);
    }
}
