//! Sync filters (spec: Client-Server API › Filtering): stored per user, referenced by ID.
//! A stored filter never changes, so every `/sync` naming one is answered from a small cache of
//! their JSON, and each filter is parsed once for all the syncs using it (another cache, by
//! content: many clients upload the same filter).

use rand::{Rng, distributions::Alphanumeric};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use ruma::{OwnedUserId, UserId, api::client::filter::FilterDefinition};

use crate::{Error, Homeserver, Result, storage::filters};

/// Stores a filter and returns its new ID.
pub async fn create(hs: &Homeserver, user_id: &UserId, filter: &FilterDefinition) -> Result<String> {
    let json = serde_json::to_string(filter).map_err(|e| Error::Internal(e.into()))?;
    let id: String = rand::thread_rng().sample_iter(&Alphanumeric).take(10).map(char::from).collect();
    filters::insert(hs.db().pool(), user_id, &id, &json).await?;
    Ok(id)
}

/// Loads a filter, or 404.
pub async fn get(hs: &Homeserver, user_id: &UserId, filter_id: &str) -> Result<FilterDefinition> {
    Ok(Arc::unwrap_or_clone(stored(hs, user_id, filter_id).await?.parse(hs)?))
}

/// A stored filter as a sync uses it, or 404.
pub async fn stored(hs: &Homeserver, user_id: &UserId, filter_id: &str) -> Result<SyncFilter> {
    let key = (user_id.to_owned(), filter_id.to_owned());
    if let Some(json) = locked(&hs.filter_cache().stored).get(&key) {
        return Ok(SyncFilter(Some(json.clone())));
    }
    let json: Arc<str> = filters::get(hs.db().pool(), user_id, filter_id)
        .await?
        .ok_or_else(|| Error::not_found("No such filter"))?
        .into();
    let filter = SyncFilter(Some(json.clone()));
    filter.parse(hs)?;
    locked(&hs.filter_cache().stored).put(key, json);
    Ok(filter)
}

/// A sync's filter, kept as its JSON and parsed where the sync reads it: a waiting long-poll
/// then holds a shared reference to ~100 bytes rather than the ~1 KB of a parsed filter.
#[derive(Clone, Debug, Default)]
pub struct SyncFilter(Option<Arc<str>>);

impl SyncFilter {
    /// A filter given in the request.
    pub fn inline(filter: &FilterDefinition) -> Result<Self> {
        let json = serde_json::to_string(filter).map_err(|e| Error::Internal(e.into()))?;
        Ok(SyncFilter(Some(json.into())))
    }

    /// The filter (the empty filter when none was given), parsed once for every sync using it
    /// and shared; not to be kept while a sync waits (the parsed form is the large one).
    pub fn parse(&self, hs: &Homeserver) -> Result<Arc<FilterDefinition>> {
        let Some(json) = &self.0 else { return Ok(Arc::default()) };
        if let Some(parsed) = locked(&hs.filter_cache().parsed).get(json) {
            return Ok(parsed.clone());
        }
        let parsed: Arc<FilterDefinition> = serde_json::from_str::<FilterDefinition>(json)
            .map_err(|e| Error::Internal(anyhow::Error::new(e).context("stored filter")))?
            .into();
        locked(&hs.filter_cache().parsed).put(json.clone(), parsed.clone());
        Ok(parsed)
    }
}

/// Recently used filters: their JSON by `(owner, filter ID)`, and parsed by their JSON.
pub struct FilterCache {
    stored: Mutex<LruCache<(OwnedUserId, String), Arc<str>>>,
    parsed: Mutex<LruCache<Arc<str>, Arc<FilterDefinition>>>,
}

/// An empty filter cache.
pub fn new_cache() -> FilterCache {
    FilterCache {
        stored: Mutex::new(LruCache::new(STORED.try_into().expect("non-zero"))),
        parsed: Mutex::new(LruCache::new(PARSED.try_into().expect("non-zero"))),
    }
}

/// How many filters' JSON the cache keeps (a few hundred bytes each).
const STORED: usize = 16_384;
/// How many parsed filters it keeps (about a kilobyte each).
const PARSED: usize = 1_024;

fn locked<K: std::hash::Hash + Eq, V>(
    cache: &Mutex<LruCache<K, V>>,
) -> std::sync::MutexGuard<'_, LruCache<K, V>> {
    // Held for one map operation, never across an await.
    cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
