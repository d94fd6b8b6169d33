//! Rooms and the event graph: every room event is a signed PDU in a DAG. Local events are built
//! against the room's head (forward extremities and the state after them), hashed and signed,
//! checked against the auth rules (ruma-state-res), and appended with their state in one
//! transaction.

pub mod aliases;
pub mod append;
pub mod auth;
pub mod backfill;
pub mod build;
pub mod cache;
pub mod create;
pub mod directory;
pub mod event_filter;
pub mod fork;
pub mod gap;
pub mod head;
pub mod history;
pub mod membership;
pub mod outbound;
pub mod pdu;
pub mod power;
pub mod prefetched;
pub mod profile;
pub mod redaction;
pub mod relations;
pub mod remote;
mod remote_batch;
pub mod remote_history;
pub mod remote_invite;
pub mod remote_join;
pub mod remote_membership;
pub mod remote_state;
pub mod resolve;
pub mod restricted;
pub mod send_queue;
pub mod serve;
pub mod server_acl;
pub mod state_view;
pub mod timeline;
mod timeline_batch;
pub mod transaction_ids;
pub mod upgrade;
pub mod visibility;

pub use append::NewEvent;
pub use head::RoomHead;
pub use pdu::Pdu;

#[cfg(test)]
mod big_room_tests;
#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod remote_tests;
