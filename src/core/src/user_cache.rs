//! A per-user value read from the database and kept until a write forgets it: what `/sync` reads
//! on every request but rarely changes (a user's stored presence, their ignored users).
//!
//! Every write forgets the user's entry after its commit. A load that raced with a write must not
//! put the old value back: each forget bumps a generation, and a load fills the cache only if
//! none happened since it started.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Mutex, MutexGuard},
};

use ruma::{OwnedUserId, UserId};

use crate::Result;

/// Values per user; see the module documentation.
pub struct UserCache<V>(Mutex<(u64, HashMap<OwnedUserId, V>)>);

impl<V> Default for UserCache<V> {
    fn default() -> Self {
        UserCache(Mutex::new((0, HashMap::new())))
    }
}

impl<V: Clone> UserCache<V> {
    /// `user`'s value, loaded with `load` unless kept.
    pub async fn get<F: Future<Output = Result<V>>>(
        &self,
        user: &UserId,
        load: impl FnOnce() -> F,
    ) -> Result<V> {
        let generation = {
            let cache = self.lock();
            if let Some(value) = cache.1.get(user) {
                return Ok(value.clone());
            }
            cache.0
        };
        let value = load().await?;
        let mut cache = self.lock();
        if cache.0 == generation {
            cache.1.insert(user.to_owned(), value.clone());
        }
        Ok(value)
    }

    /// Forgets `user`'s value; call after the write that changed it committed.
    pub fn forget(&self, user: &UserId) {
        let mut cache = self.lock();
        cache.0 = cache.0.wrapping_add(1);
        cache.1.remove(user);
    }

    fn lock(&self) -> MutexGuard<'_, (u64, HashMap<OwnedUserId, V>)> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[tokio::test]
    async fn a_kept_value_is_not_loaded_again_until_forgotten() {
        let cache = UserCache::default();
        let alice = user_id!("@alice:x");
        assert_eq!(cache.get(alice, || async { Ok(1) }).await.ok(), Some(1));
        assert_eq!(cache.get(alice, || async { Ok(2) }).await.ok(), Some(1));
        cache.forget(alice);
        assert_eq!(cache.get(alice, || async { Ok(3) }).await.ok(), Some(3));
    }

    #[tokio::test]
    async fn a_load_that_raced_with_a_write_is_not_kept() {
        let cache = UserCache::default();
        let alice = user_id!("@alice:x");
        let value = cache
            .get(alice, || async {
                // A write commits and forgets while the old value is being read.
                cache.forget(alice);
                Ok("old")
            })
            .await;
        assert_eq!(value.ok(), Some("old"));
        assert_eq!(cache.get(alice, || async { Ok("new") }).await.ok(), Some("new"));
    }
}
