//! The port through which core asks federation to act on rooms this server is not in (joining
//! through a resident server) or lacks the history of (backfill). Core never depends on
//! federation (DESIGN §1): the composition root installs federation's implementation with
//! [`Homeserver::set_remote_rooms`]; without one (federation disabled), such requests fail as if
//! the room were unknown.
//!
//! [`Homeserver::set_remote_rooms`]: crate::Homeserver::set_remote_rooms

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedServerName, RoomId, RoomVersionId, UserId};
use serde_json::{Map, Value};

use crate::{Result, rooms::Pdu};

pub use futures::future::BoxFuture;

/// What federation does for core.
pub trait RemoteRooms: Send + Sync {
    /// Joins `user` to `room_id` through the first of `via` that lets them in (make_join,
    /// send_join), with `content` added to the join event; returns the join's event ID.
    fn join<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
        content: Map<String, Value>,
    ) -> BoxFuture<'a, Result<OwnedEventId>>;

    /// Has the invitee's server (the `state_key`'s) countersign `invite`, an invite event of a
    /// room of `version`, sending `stripped_state` along; returns the countersigned event.
    fn invite<'a>(
        &'a self,
        invite: &'a CanonicalJsonObject,
        version: &'a RoomVersionId,
        stripped_state: Vec<CanonicalJsonObject>,
    ) -> BoxFuture<'a, Result<CanonicalJsonObject>>;

    /// Knocks on `room_id` for `user` through the first of `via` that takes it (make_knock,
    /// send_knock), with `content` added; returns the room's version, the knock and the room's
    /// stripped state the resident server answered.
    fn knock<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
        content: Map<String, Value>,
    ) -> BoxFuture<'a, Result<(RoomVersionId, Pdu, Vec<Value>)>>;

    /// Rejects `user`'s invite to `room_id` through `via` (make_leave, send_leave); returns the
    /// leave event and the room's version.
    fn reject_invite<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &'a RoomId,
        via: &'a [OwnedServerName],
    ) -> BoxFuture<'a, Result<(RoomVersionId, Pdu)>>;

    /// Asks the first of `servers` that answers for up to `limit` events of `room_id` before
    /// and including `from` (`/backfill`); returns those whose signatures verify (a wrong
    /// content hash redacts one). Authorising and storing them is core's.
    fn backfill<'a>(
        &'a self,
        room_id: &'a RoomId,
        servers: &'a [OwnedServerName],
        from: &'a [OwnedEventId],
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Pdu>>>;
}
