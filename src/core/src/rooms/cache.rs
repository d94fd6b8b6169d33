//! In-memory caches of the room code: the head of each room (what the next local event builds
//! on), recently used events (auth events above all), state groups, and what users may read of
//! rooms (valid while the room's state map is the one it was computed on: membership and history
//! visibility only change through state events, which give the head a new map; and while no
//! room was forgotten or backfilled, since neither is a state change of the head). Events are immutable, so the event
//! cache is always correct; a head is only replaced after its transaction committed, and only
//! the process holding the room's write lock writes the room.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use lru::LruCache;
use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, UserId};
use sqlx::AnyPool;

use super::{Pdu, RoomHead, head::StateMap, visibility::Readable};
use crate::storage::{
    Conn,
    state::{self, StateEntry},
};

/// How many events the event cache keeps.
const EVENTS: NonZeroUsize = NonZeroUsize::new(16_384).expect("non-zero");
/// How many state groups the group cache keeps.
const GROUPS: NonZeroUsize = NonZeroUsize::new(1_024).expect("non-zero");
/// How many (user, room) readable ranges are kept.
const READABLE: NonZeroUsize = NonZeroUsize::new(16_384).expect("non-zero");

/// What a cached [`Readable`] was computed on: the room's state map and the invalidation count.
#[derive(Clone)]
pub struct Stamp {
    state: Arc<StateMap>,
    forgets: u64,
}

struct CachedReadable {
    stamp: Stamp,
    readable: Readable,
}

/// The other servers in a room, with the head state map they were read for.
pub type RemoteServers = (Arc<StateMap>, Arc<Vec<OwnedServerName>>);

/// The room caches of one homeserver.
pub struct RoomCache {
    // std mutexes: held for a map operation only, never across an await.
    heads: Mutex<HashMap<OwnedRoomId, RoomHead>>,
    events: Mutex<LruCache<OwnedEventId, Arc<Pdu>>>,
    groups: Mutex<LruCache<i64, Arc<Vec<StateEntry>>>>,
    readable: Mutex<LruCache<(OwnedUserId, OwnedRoomId), CachedReadable>>,
    /// Per room, the other servers with joined members, with the state map they were read on.
    servers: Mutex<HashMap<OwnedRoomId, RemoteServers>>,
    /// Times every cached [`Readable`] was made stale (rooms forgotten, history backfilled).
    forgets: AtomicU64,
}

impl Default for RoomCache {
    fn default() -> Self {
        RoomCache {
            heads: Mutex::new(HashMap::new()),
            events: Mutex::new(LruCache::new(EVENTS)),
            groups: Mutex::new(LruCache::new(GROUPS)),
            readable: Mutex::new(LruCache::new(READABLE)),
            servers: Mutex::new(HashMap::new()),
            forgets: AtomicU64::new(0),
        }
    }
}

/// A state map's entry as a state group holds it.
fn state_entry((kind, state_key): &(String, String), (event_nid, event_id): &(i64, String)) -> StateEntry {
    StateEntry {
        kind: kind.clone(),
        state_key: state_key.clone(),
        event_nid: *event_nid,
        event_id: event_id.clone(),
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RoomCache {
    /// What `user` may read of `room_id`, if cached and still valid.
    pub fn readable(&self, user: &UserId, room_id: &RoomId) -> Option<Readable> {
        let now = self.stamp(room_id)?;
        let mut cache = locked(&self.readable);
        let cached = cache.get(&(user.to_owned(), room_id.to_owned()))?;
        let valid = Arc::ptr_eq(&cached.stamp.state, &now.state) && cached.stamp.forgets == now.forgets;
        valid.then(|| cached.readable.clone())
    }

    /// What a [`Readable`] about to be loaded is computed on: take it *before* loading, so that
    /// a state change committed meanwhile makes the cached entry stale, never the reverse.
    /// `None` when the room's head is not cached.
    pub fn stamp(&self, room_id: &RoomId) -> Option<Stamp> {
        let state = locked(&self.heads).get(room_id)?.state.clone();
        Some(Stamp { state, forgets: self.forgets.load(Ordering::SeqCst) })
    }

    /// Caches what `user` may read of `room_id`, loaded after taking `stamp`.
    pub fn put_readable(&self, user: &UserId, room_id: &RoomId, stamp: Stamp, readable: Readable) {
        locked(&self.readable).put((user.to_owned(), room_id.to_owned()), CachedReadable { stamp, readable });
    }

    /// Makes every cached [`Readable`] stale: after a user forgot a room, or history joined a
    /// room's timeline from below (backfill), neither of which changes the room's head.
    pub fn invalidate_readable(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
    }

    /// The other servers in the room whose head has `state`, if cached for that state.
    pub fn remote_servers(
        &self,
        room_id: &RoomId,
        state: &Arc<StateMap>,
    ) -> Option<Arc<Vec<OwnedServerName>>> {
        let (stamp, servers) = self.last_remote_servers(room_id)?;
        Arc::ptr_eq(&stamp, state).then_some(servers)
    }

    /// The other servers in the room as last cached, with the state map they were read for.
    pub fn last_remote_servers(&self, room_id: &RoomId) -> Option<RemoteServers> {
        locked(&self.servers).get(room_id).cloned()
    }

    /// Caches the other servers in the room, as read for the head state `state`.
    pub fn put_remote_servers(
        &self,
        room_id: &RoomId,
        state: Arc<StateMap>,
        servers: Arc<Vec<OwnedServerName>>,
    ) {
        locked(&self.servers).insert(room_id.to_owned(), (state, servers));
    }

    /// A copy of the cached head of a room.
    pub fn head(&self, room_id: &RoomId) -> Option<RoomHead> {
        locked(&self.heads).get(room_id).cloned()
    }

    /// Caches a room's head after its transaction committed.
    pub fn set_head(&self, head: RoomHead) {
        locked(&self.heads).insert(head.room_id.clone(), head);
    }

    /// A cached event.
    pub fn event(&self, event_id: &EventId) -> Option<Arc<Pdu>> {
        locked(&self.events).get(event_id).cloned()
    }

    /// Caches an event.
    pub fn put_event(&self, pdu: Arc<Pdu>) {
        locked(&self.events).put(pdu.event_id.clone(), pdu);
    }

    /// The entries of a state group, if cached.
    pub fn cached_group(&self, group: i64) -> Option<Arc<Vec<StateEntry>>> {
        locked(&self.groups).get(&group).cloned()
    }

    /// The entries of a state group, loaded once: groups never change after they are written.
    pub async fn state_group(&self, conn: &mut Conn, group: i64) -> sqlx::Result<Arc<Vec<StateEntry>>> {
        if let Some(entries) = self.cached_group(group) {
            return Ok(entries);
        }
        let entries = Arc::new(state::load_group(conn, group).await?);
        locked(&self.groups).put(group, entries.clone());
        Ok(entries)
    }

    /// Loads those of `groups` not cached yet, in one query (per few hundred), so that
    /// [`state_group`](Self::state_group) then finds them all.
    pub async fn load_state_groups(&self, pool: &AnyPool, groups: &[i64]) -> sqlx::Result<()> {
        // A connection only when something is missing: sqlx pings every connection returned
        // to the pool, a round trip to its worker thread that a cached sync need not pay.
        if self.missing_groups(groups).is_empty() {
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        // Checked again with the connection in hand: the syncs one commit wakes all miss its new
        // group at once, and those that waited for a connection find it loaded by the first
        // (a 500-member room's group is a 20–30 ms query; loading it 500 times stalled them).
        let missing = self.missing_groups(groups);
        if missing.is_empty() {
            return Ok(());
        }
        let loaded = state::load_groups(&mut conn, &missing).await?;
        let mut cached = locked(&self.groups);
        for (group, entries) in loaded {
            cached.put(group, Arc::new(entries));
        }
        Ok(())
    }

    /// Caches, without a query, those of the `(room, group)` pairs that name their room's head
    /// group, from the head's state map: a room's newest group is the one every sync a message
    /// wakes asks for at once, and the first of them would otherwise load it while the others
    /// wait for the pool.
    pub fn groups_from_heads(&self, wanted: &[(&RoomId, i64)]) {
        let missing = self.missing_groups(&wanted.iter().map(|(_, group)| *group).collect::<Vec<_>>());
        for (room_id, group) in wanted.iter().filter(|(_, group)| missing.binary_search(group).is_ok()) {
            let Some(state) = self.head_state(room_id, *group) else { continue };
            let entries = state.iter().map(|(key, value)| state_entry(key, value)).collect();
            locked(&self.groups).put(*group, Arc::new(entries));
        }
    }

    /// The member entries of `users` in state group `group` of `room_id`, when that is the
    /// room's head group: looked up in the head's state map instead of scanning the group
    /// (every woken sync that lazy-loads members asks for its timeline's senders). Users
    /// without a member event are left out.
    pub fn head_members<'a>(
        &self,
        room_id: &RoomId,
        group: i64,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Option<Vec<StateEntry>> {
        let state = self.head_state(room_id, group)?;
        let entries = users
            .into_iter()
            .filter_map(|user| {
                let key = ("m.room.member".to_owned(), user.to_owned());
                state.get(&key).map(|value| state_entry(&key, value))
            })
            .collect();
        Some(entries)
    }

    /// The state map of `room_id`'s cached head, if its group is `group`.
    fn head_state(&self, room_id: &RoomId, group: i64) -> Option<Arc<StateMap>> {
        locked(&self.heads)
            .get(room_id)
            .filter(|head| head.state_group == Some(group))
            .map(|head| head.state.clone())
    }

    /// Those of `groups` not cached, sorted and without repeats.
    fn missing_groups(&self, groups: &[i64]) -> Vec<i64> {
        let cached = locked(&self.groups);
        let mut missing: Vec<i64> = groups.iter().copied().filter(|g| !cached.contains(g)).collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Loads those of the events `(interned ID, event ID)` not cached yet, in one query (per
    /// few hundred), so that [`event`](Self::event) then finds them all.
    pub async fn load_events(&self, pool: &AnyPool, wanted: &[(i64, &str)]) -> crate::Result<()> {
        // As for groups: a connection only when something is missing, and checked again once
        // it is in hand.
        if self.missing_events(wanted).is_empty() {
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        let missing = self.missing_events(wanted);
        if missing.is_empty() {
            return Ok(());
        }
        for row in crate::storage::events::get_by_nids(&mut conn, &missing).await? {
            let room_id = RoomId::parse(&row.room_id)
                .map_err(|e| crate::Error::Internal(anyhow::anyhow!("stored room ID: {e}")))?;
            self.put_event(Arc::new(super::timeline::parse(&row, &room_id)?));
        }
        Ok(())
    }

    /// A stored event row of `room_id`, parsed once: from the event cache, else parsed and
    /// cached (a message a woken sync serves is then parsed once, not once per member).
    pub fn parsed(
        &self,
        row: &crate::storage::events::StoredEvent,
        room_id: &RoomId,
    ) -> crate::Result<Arc<Pdu>> {
        if let Some(pdu) = <&EventId>::try_from(row.event_id.as_str()).ok().and_then(|id| self.event(id)) {
            return Ok(pdu);
        }
        let pdu = Arc::new(super::timeline::parse(row, room_id)?);
        self.put_event(pdu.clone());
        Ok(pdu)
    }

    /// The interned IDs of those of `wanted` not cached.
    fn missing_events(&self, wanted: &[(i64, &str)]) -> Vec<i64> {
        let mut cached = locked(&self.events);
        wanted
            .iter()
            .filter(|(_, id)| EventId::parse(*id).ok().is_none_or(|id| cached.get(&id).is_none()))
            .map(|(nid, _)| *nid)
            .collect()
    }
}
