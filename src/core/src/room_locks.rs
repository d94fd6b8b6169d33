//! Per-room write locks: events of one room are appended one at a time, so each new event's
//! `prev_events` are the room's true forward extremities. Rooms do not block each other.
//! (Process-local; several processes writing one room need a database lock, added with
//! scale-out.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use ruma::{OwnedRoomId, RoomId};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The lock table of one homeserver.
#[derive(Default)]
pub struct RoomLocks {
    // A std mutex: held only to look up an entry, never across an await.
    table: Mutex<HashMap<OwnedRoomId, Weak<AsyncMutex<()>>>>,
}

impl RoomLocks {
    /// Waits for and takes the write lock of `room_id`.
    pub async fn lock(&self, room_id: &RoomId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut table = self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if table.len() > 1024 {
                table.retain(|_, weak| weak.strong_count() > 0);
            }
            match table.get(room_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    table.insert(room_id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_room_is_locked_at_a_time_and_other_rooms_are_free() {
        let locks = RoomLocks::default();
        let a = ruma::room_id!("!a:x");
        let guard = locks.lock(a).await;
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock(a)).await;
        assert!(blocked.is_err(), "a second writer of the same room waits");
        let _other = locks.lock(ruma::room_id!("!b:x")).await;
        drop(guard);
        let _again = locks.lock(a).await;
    }
}
