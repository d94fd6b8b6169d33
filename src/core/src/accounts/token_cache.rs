//! A cache of access tokens already verified, so that most requests skip the token
//! query. Any local change to a user's devices clears it; entries also expire after [`TTL`], which
//! bounds how long another process may honour a token revoked elsewhere.

use std::{
    num::NonZeroUsize,
    sync::Mutex,
    time::{Duration, Instant},
};

use lru::LruCache;

use super::User;

/// How long a verified token is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(60);

const CAPACITY: NonZeroUsize = NonZeroUsize::new(65_536).expect("non-zero");

/// Token digest → user, with the time it was verified.
pub struct TokenCache(Mutex<LruCache<String, (User, Instant)>>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(Mutex::new(LruCache::new(CAPACITY)))
    }
}

impl TokenCache {
    fn locked(&self) -> std::sync::MutexGuard<'_, LruCache<String, (User, Instant)>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The user of a token digest verified less than [`TTL`] ago.
    pub fn get(&self, digest: &str) -> Option<User> {
        let mut cache = self.locked();
        match cache.get(digest) {
            Some((user, at)) if at.elapsed() < TTL => Some(user.clone()),
            Some(_) => {
                cache.pop(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token.
    pub fn put(&self, digest: String, user: User) {
        self.locked().put(digest, (user, Instant::now()));
    }

    /// Forgets every token: called whenever tokens or devices are revoked.
    pub fn clear(&self) {
        self.locked().clear();
    }
}
