//! A per-user (or per-device) value read from the database and kept until a write forgets it:
//! what `/sync` reads on every request but rarely changes (a user's stored presence, their
//! ignored users, a device's one-time key counts).
//!
//! Every write forgets the entry after its commit. Requests that miss together share one load
//! (one message wakes thousands of long-polls at once); a load that raced with a write answers
//! only the requests that began before it and is not kept for later ones.

use std::{
    borrow::Borrow,
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::OwnedUserId;
use tokio::sync::OnceCell;

use crate::Result;

/// Values per key (a user, by default); see the module documentation.
pub struct UserCache<V, K = OwnedUserId>(Mutex<HashMap<K, Arc<OnceCell<V>>>>);

impl<V, K> Default for UserCache<V, K> {
    fn default() -> Self {
        UserCache(Mutex::new(HashMap::new()))
    }
}

impl<V: Clone, K: Eq + Hash> UserCache<V, K> {
    /// The value of `key`, loaded with `load` unless kept or being loaded.
    pub async fn get<Q, F>(&self, key: &Q, load: impl FnOnce() -> F) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<V>>,
    {
        let entry = {
            let mut cache = self.lock();
            match cache.get(key) {
                Some(entry) => entry.clone(),
                None => cache.entry(key.to_owned()).or_default().clone(),
            }
        };
        entry.get_or_try_init(load).await.cloned()
    }

    /// Forgets the value of `key`; call after the write that changed it committed.
    pub fn forget<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.lock().remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<OnceCell<V>>>> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use ruma::{OwnedUserId, user_id};

    use super::*;

    fn alice() -> OwnedUserId {
        user_id!("@alice:x").to_owned()
    }

    #[tokio::test]
    async fn a_kept_value_is_not_loaded_again_until_forgotten() {
        let cache: UserCache<i32> = UserCache::default();
        assert_eq!(cache.get(&alice(), || async { Ok(1) }).await.ok(), Some(1));
        assert_eq!(cache.get(&alice(), || async { Ok(2) }).await.ok(), Some(1));
        cache.forget(&alice());
        assert_eq!(cache.get(&alice(), || async { Ok(3) }).await.ok(), Some(3));
    }

    #[tokio::test]
    async fn a_load_that_raced_with_a_write_is_not_kept() {
        let cache: UserCache<&str> = UserCache::default();
        let value = cache
            .get(&alice(), || async {
                // A write commits and forgets while the old value is being read.
                cache.forget(&alice());
                Ok("old")
            })
            .await;
        assert_eq!(value.ok(), Some("old"));
        assert_eq!(cache.get(&alice(), || async { Ok("new") }).await.ok(), Some("new"));
    }

    #[tokio::test]
    async fn requests_that_miss_together_share_one_load() {
        let cache: UserCache<usize> = UserCache::default();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            tokio::task::yield_now().await;
            Ok(loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        };
        let alice = alice();
        let (a, b) = tokio::join!(cache.get(&alice, load), cache.get(&alice, load));
        assert_eq!((a.ok(), b.ok()), (Some(0), Some(0)));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_load_is_tried_again() {
        let cache: UserCache<i32> = UserCache::default();
        let failed =
            cache.get(&alice(), || async { Err(crate::Error::Internal(anyhow::anyhow!("down"))) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.get(&alice(), || async { Ok(1) }).await.ok(), Some(1));
    }
}
