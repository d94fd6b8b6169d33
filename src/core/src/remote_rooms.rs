//! The port through which core asks federation to act on rooms this server is not in (joining
//! through a resident server). Core never depends on federation (DESIGN §1): the composition
//! root installs federation's implementation with [`Homeserver::set_remote_rooms`]; without
//! one (federation disabled), such requests fail as if the room were unknown.
//!
//! [`Homeserver::set_remote_rooms`]: crate::Homeserver::set_remote_rooms

use std::{future::Future, pin::Pin};

use ruma::{OwnedEventId, OwnedServerName, RoomId, UserId};
use serde_json::{Map, Value};

use crate::Result;

/// A boxed future borrowing its arguments.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
}
