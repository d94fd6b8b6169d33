//! The `events.redacted_by` column: which redaction took effect on an event. The event's own
//! JSON is kept as signed (federation serves and checks it); clients get the redacted form.

use std::{collections::HashMap, num::NonZeroUsize, sync::Mutex};

use lru::LruCache;
use sqlx::{AnyPool, Row};

use super::{Conn, IDS_PER_STATEMENT, Params};

/// Marks an event redacted by `redaction_id`; an earlier redaction stays the recorded one.
pub async fn mark(conn: &mut Conn, event_nid: i64, redaction_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET redacted_by = $1 WHERE event_nid = $2 AND redacted_by IS NULL")
        .bind(redaction_id)
        .bind(event_nid)
        .execute(conn)
        .await?;
    Ok(())
}

/// For those of `event_ids` that are redacted: event ID → the redaction's event ID.
pub async fn redacted_by(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<HashMap<String, String>> {
    let mut redacted = HashMap::new();
    for chunk in event_ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id, redacted_by FROM events WHERE event_id IN ({}) AND redacted_by IS NOT NULL",
            Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            redacted.insert(row.try_get("event_id")?, row.try_get("redacted_by")?);
        }
    }
    Ok(redacted)
}

/// How many events' redaction status [`RedactionCache`] keeps.
const CACHED: NonZeroUsize = NonZeroUsize::new(16_384).expect("non-zero");

/// Whether events are redacted, remembered per event: a woken `/sync` serving the same few
/// member events to every member of a room then asks the database nothing.
///
/// Everything is forgotten once a write that redacted an event ends (see
/// [`Held`](super::positions::Held)); a lookup that read the database before that only keeps
/// its answers if nothing was forgotten meanwhile, so a stale status never outlives the commit
/// that changed it.
pub struct RedactionCache(Mutex<Known>);

struct Known {
    /// Times everything was forgotten.
    forgets: u64,
    /// Event ID → the redaction's event ID, or `None` for an unredacted event.
    by: LruCache<String, Option<String>>,
}

impl Default for RedactionCache {
    fn default() -> Self {
        RedactionCache(Mutex::new(Known { forgets: 0, by: LruCache::new(CACHED) }))
    }
}

impl RedactionCache {
    /// [`redacted_by`], asking the database only about events not remembered.
    pub async fn redacted_by(
        &self,
        pool: &AnyPool,
        event_ids: &[&str],
    ) -> sqlx::Result<HashMap<String, String>> {
        let (forgets, mut redacted, unknown) = self.known(event_ids);
        if unknown.is_empty() {
            return Ok(redacted);
        }
        let found = redacted_by(&mut *pool.acquire().await?, &unknown).await?;
        self.keep(forgets, &unknown, &found);
        redacted.extend(found);
        Ok(redacted)
    }

    /// What is remembered of `event_ids`: the forget count to [`keep`](Self::keep) answers
    /// with, the redacted ones, and the unknown ones.
    fn known<'a>(&self, event_ids: &[&'a str]) -> (u64, HashMap<String, String>, Vec<&'a str>) {
        let mut known = self.lock();
        let mut redacted = HashMap::new();
        let mut unknown = Vec::new();
        for id in event_ids {
            match known.by.get(*id) {
                Some(Some(by)) => {
                    redacted.insert((*id).to_owned(), by.clone());
                }
                Some(None) => {}
                None => unknown.push(*id),
            }
        }
        (known.forgets, redacted, unknown)
    }

    /// Remembers what the database said of `asked` (the redacted ones in `found`), unless
    /// everything was forgotten since `forgets` was read: the answer may predate a redaction.
    fn keep(&self, forgets: u64, asked: &[&str], found: &HashMap<String, String>) {
        let mut known = self.lock();
        if known.forgets == forgets {
            for id in asked {
                known.by.put((*id).to_owned(), found.get(*id).cloned());
            }
        }
    }

    /// Forgets every status: a redaction was written.
    pub(super) fn forget(&self) {
        let mut known = self.lock();
        known.forgets += 1;
        known.by.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // Held for map operations only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_statuses_answer_until_forgotten() {
        let cache = RedactionCache::default();
        let (forgets, _, unknown) = cache.known(&["$a", "$b"]);
        assert_eq!(unknown, ["$a", "$b"]);
        cache.keep(forgets, &unknown, &HashMap::from([("$b".to_owned(), "$r".to_owned())]));
        let (_, redacted, unknown) = cache.known(&["$a", "$b"]);
        assert!(unknown.is_empty());
        assert_eq!(redacted, HashMap::from([("$b".to_owned(), "$r".to_owned())]));
        cache.forget();
        assert_eq!(cache.known(&["$a"]).2, ["$a"]);
    }

    #[test]
    fn an_answer_read_before_a_forget_is_not_kept() {
        let cache = RedactionCache::default();
        let (forgets, _, unknown) = cache.known(&["$a"]);
        // A redaction of $a commits while the database is being read.
        cache.forget();
        cache.keep(forgets, &unknown, &HashMap::new());
        assert_eq!(cache.known(&["$a"]).2, ["$a"], "the unredacted answer may be stale");
    }
}
