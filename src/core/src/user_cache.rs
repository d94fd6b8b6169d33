//! A per-user (or per-device) value read from the database and kept until a write forgets it:
//! what `/sync` reads on every request but rarely changes (a user's stored presence, their
//! ignored users, a device's one-time key counts).
//!
//! Every write forgets the entry after its commit. A load that raced with a write must not
//! put the old value back: each forget bumps a generation, and a load fills the cache only if
//! none happened since it started.

use std::{
    borrow::Borrow,
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Mutex, MutexGuard},
};

use ruma::OwnedUserId;

use crate::Result;

/// Values per key (a user, by default); see the module documentation.
pub struct UserCache<V, K = OwnedUserId>(Mutex<(u64, HashMap<K, V>)>);

impl<V, K> Default for UserCache<V, K> {
    fn default() -> Self {
        UserCache(Mutex::new((0, HashMap::new())))
    }
}

impl<V: Clone, K: Eq + Hash> UserCache<V, K> {
    /// The value of `key`, loaded with `load` unless kept.
    pub async fn get<Q, F>(&self, key: &Q, load: impl FnOnce() -> F) -> Result<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<V>>,
    {
        let generation = {
            let cache = self.lock();
            if let Some(value) = cache.1.get(key) {
                return Ok(value.clone());
            }
            cache.0
        };
        let value = load().await?;
        let mut cache = self.lock();
        if cache.0 == generation {
            cache.1.insert(key.to_owned(), value.clone());
        }
        Ok(value)
    }

    /// Forgets the value of `key`; call after the write that changed it committed.
    pub fn forget<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        let mut cache = self.lock();
        cache.0 = cache.0.wrapping_add(1);
        cache.1.remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, (u64, HashMap<K, V>)> {
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
}
