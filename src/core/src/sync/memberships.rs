//! Every sync starts from its user's latest membership event in each room. They change rarely,
//! so they are kept per user and reused while the event stream's
//! [`Activity`](crate::storage::activity::Activity) shows no membership change of that user
//! between the position they were read at and the sync's.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use ruma::{OwnedUserId, RoomId, UserId};
use serde_json::Value;

use crate::{
    Homeserver, Result,
    storage::sync::{self as queries, MembershipRow},
};

/// A user's memberships: each room's latest membership event with its `membership`.
pub type Memberships = Arc<Vec<(String, MembershipRow)>>;

/// The memberships of the users who synced, each as of an event stream position.
#[derive(Default)]
pub struct MembershipCache(Mutex<HashMap<OwnedUserId, (i64, Memberships)>>);

impl MembershipCache {
    /// `user`'s memberships as of event stream position `upto`.
    pub async fn at(&self, hs: &Homeserver, user: &UserId, upto: i64) -> Result<Memberships> {
        let activity = hs.db().events().activity();
        let cached = self.lock().get(user).cloned();
        if let Some((as_of, memberships)) = cached {
            let unmoved =
                activity.membership_moves_after(user, as_of.min(upto)).is_some_and(|moves| moves.is_empty());
            if unmoved {
                return Ok(memberships);
            }
        }
        let rows = queries::memberships_at(hs.db().pool(), user, upto).await?;
        let memberships: Memberships =
            Arc::new(rows.into_iter().map(|row| (membership_of(&row.event.json), row)).collect());
        if upto >= activity.floor() {
            let mut cache = self.lock();
            let newer = cache.get(user).is_none_or(|(as_of, _)| *as_of <= upto);
            if newer {
                cache.insert(user.to_owned(), (upto, memberships.clone()));
            }
        }
        Ok(memberships)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<OwnedUserId, (i64, Memberships)>> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The rooms of `memberships` (any membership).
pub fn rooms(memberships: &[(String, MembershipRow)]) -> impl Iterator<Item = &RoomId> {
    memberships.iter().map(|(_, row)| &*row.room_id)
}

/// The `membership` of a stored member event.
pub(super) fn membership_of(json: &str) -> String {
    let event: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    event["content"]["membership"].as_str().unwrap_or_default().to_owned()
}
