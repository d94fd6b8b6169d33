//! The lazy-loaded members each device already has (spec: Lazy-loading room members): without
//! `include_redundant_members`, a sync leaves out the member events of timeline senders that an
//! earlier response gave the device. In a busy room the same few people talk, and resending
//! their member events cost every woken sync a lookup and most of its response.
//!
//! A device has what the response it continues from carried, and what that one's predecessor
//! carried, and so on: the set is trusted only when the sync's `since` is the `next_batch` of
//! the last response recorded. A response that was lost (the client retries an older token) or
//! a sync from another token starts the set again, sending members redundantly rather than
//! missing one.

use std::{
    collections::HashSet,
    num::NonZeroUsize,
    sync::{Arc, Mutex, MutexGuard},
};

use lru::LruCache;
use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use serde_json::{Map, Value};

use super::SyncToken;

/// Devices whose sets are kept.
const DEVICES: NonZeroUsize = NonZeroUsize::new(16_384).expect("non-zero");
/// Member events kept per device; past this the set starts again.
const MEMBERS_PER_DEVICE: usize = 2_000;

/// Per device: the `next_batch` of its last response, and the member events it has then.
pub struct LazyMembers(Mutex<Sets>);

type Sets = LruCache<(OwnedUserId, OwnedDeviceId), (SyncToken, Arc<HashSet<String>>)>;

impl Default for LazyMembers {
    fn default() -> Self {
        LazyMembers(Mutex::new(LruCache::new(DEVICES)))
    }
}

impl LazyMembers {
    /// The member event IDs the device has when it syncs from `since`.
    pub fn known(&self, user: &UserId, device: &DeviceId, since: Option<SyncToken>) -> Arc<HashSet<String>> {
        let mut sets = self.lock();
        match (since, sets.get(&(user.to_owned(), device.to_owned()))) {
            (Some(since), Some((token, members))) if *token == since => members.clone(),
            _ => Arc::default(),
        }
    }

    /// Records that the response ending at `next_batch` gave the device the member events of
    /// `rooms` (a sync response's `rooms.join`) on top of `known`.
    pub fn record(
        &self,
        user: &UserId,
        device: &DeviceId,
        next_batch: SyncToken,
        known: &HashSet<String>,
        rooms: &Map<String, Value>,
    ) {
        let sent = rooms.values().flat_map(|room| {
            ["state", "timeline"].into_iter().flat_map(|section| {
                room[section]["events"].as_array().into_iter().flatten().filter_map(|event| {
                    (event["type"] == "m.room.member").then(|| event["event_id"].as_str()).flatten()
                })
            })
        });
        let mut members = if known.len() < MEMBERS_PER_DEVICE { known.clone() } else { HashSet::new() };
        members.extend(sent.map(str::to_owned));
        self.lock().put((user.to_owned(), device.to_owned()), (next_batch, Arc::new(members)));
    }

    fn lock(&self) -> MutexGuard<'_, Sets> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use ruma::{device_id, user_id};
    use serde_json::json;

    use super::*;

    fn token(events: i64) -> SyncToken {
        SyncToken { events, ..SyncToken::default() }
    }

    fn rooms(member_ids: &[&str]) -> Map<String, Value> {
        let events: Vec<Value> =
            member_ids.iter().map(|id| json!({ "type": "m.room.member", "event_id": id })).collect();
        let room = json!({ "state": { "events": events }, "timeline": { "events": [{ "type": "m.room.message", "event_id": "$m" }] } });
        Map::from_iter([("!r:x".to_owned(), room)])
    }

    #[test]
    fn a_device_has_what_the_responses_it_continues_from_carried() {
        let lazy = LazyMembers::default();
        let (alice, phone) = (user_id!("@alice:x"), device_id!("PHONE"));
        let known = lazy.known(alice, phone, None);
        lazy.record(alice, phone, token(1), &known, &rooms(&["$bob"]));
        let known = lazy.known(alice, phone, Some(token(1)));
        assert_eq!(*known, HashSet::from(["$bob".to_owned()]));
        lazy.record(alice, phone, token(2), &known, &rooms(&["$carol"]));
        assert_eq!(lazy.known(alice, phone, Some(token(2))).len(), 2, "bob and carol, not the message");
    }

    #[test]
    fn a_sync_from_another_token_starts_again() {
        let lazy = LazyMembers::default();
        let (alice, phone) = (user_id!("@alice:x"), device_id!("PHONE"));
        lazy.record(alice, phone, token(2), &HashSet::new(), &rooms(&["$bob"]));
        assert!(lazy.known(alice, phone, Some(token(1))).is_empty(), "the response of token 2 was lost");
        assert!(lazy.known(alice, device_id!("LAPTOP"), Some(token(2))).is_empty(), "another device");
        assert!(lazy.known(alice, phone, None).is_empty(), "an initial sync");
    }
}
