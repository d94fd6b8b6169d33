//! What push rule evaluation keeps in memory, so that evaluating an event for every member of a
//! large room touches no database: each user's rules (see [`UserRules`]), the template of the
//! server-default rules, and each room's push context (local joined members, display names,
//! member count, power levels).
//!
//! Rule sets change only through the `/pushrules` endpoints, which forget the user's entry after
//! their commit. A load that raced with such a change must not put the old rules back: every
//! change bumps a generation, and a load only fills the cache if no change happened since it
//! started. Room contexts carry the state map they were built from and are rebuilt when the
//! room's head has moved on to another one (see [`super::room`]).

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Arc, Mutex, MutexGuard},
};

use lru::LruCache;
use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::{room::RoomContext, rules::UserRules, template::Template};

/// How many users' rules are kept (a user with the server-default rules takes under a kilobyte,
/// a changed rule set about six).
const RULESETS: NonZeroUsize = NonZeroUsize::new(16_384).expect("non-zero");

/// The push caches of one homeserver.
pub struct PushCache {
    // std mutexes: held for map operations only, never across an await.
    rulesets: Mutex<Rulesets>,
    rooms: Mutex<HashMap<OwnedRoomId, Arc<RoomContext>>>,
    template: Template,
}

struct Rulesets {
    lru: LruCache<OwnedUserId, UserRules>,
    /// Bumped by every change of a rule set.
    generation: u64,
}

impl Default for PushCache {
    fn default() -> Self {
        PushCache {
            rulesets: Mutex::new(Rulesets { lru: LruCache::new(RULESETS), generation: 0 }),
            rooms: Mutex::new(HashMap::new()),
            template: Template::new(),
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PushCache {
    /// The template of the server-default rules.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The cached rules of each user (`None` where they must be loaded), and the generation to
    /// hand back to [`put_rulesets`](Self::put_rulesets) with what was loaded.
    pub fn rulesets(&self, users: &[&UserId]) -> (Vec<Option<UserRules>>, u64) {
        let mut cache = locked(&self.rulesets);
        let found = users.iter().map(|user| cache.lru.get(*user).cloned()).collect();
        (found, cache.generation)
    }

    /// Caches loaded rules, unless a rule set changed since `generation`.
    pub fn put_rulesets(&self, loaded: Vec<(OwnedUserId, UserRules)>, generation: u64) {
        let mut cache = locked(&self.rulesets);
        if cache.generation != generation {
            return;
        }
        for (user, ruleset) in loaded {
            cache.lru.put(user, ruleset);
        }
    }

    /// Forgets `user`'s rule set after it changed (call after the change committed).
    pub fn forget_ruleset(&self, user: &UserId) {
        let mut cache = locked(&self.rulesets);
        cache.generation += 1;
        cache.lru.pop(user);
    }

    /// The cached push context of a room.
    pub fn room(&self, room_id: &RoomId) -> Option<Arc<RoomContext>> {
        locked(&self.rooms).get(room_id).cloned()
    }

    /// Caches a room's push context.
    pub fn set_room(&self, context: Arc<RoomContext>) {
        locked(&self.rooms).insert(context.room_id.clone(), context);
    }
}
