//! Rooms and the event graph: every room event is a signed PDU in a DAG. Local events are built
//! against the room's head (forward extremities and the state after them), hashed and signed,
//! checked against the auth rules (ruma-state-res), and appended with their state in one
//! transaction.

pub mod aliases;
pub mod append;
pub mod auth;
pub mod build;
pub mod create;
pub mod head;
pub mod membership;
pub mod pdu;
pub mod resolve;
pub mod timeline;

pub use append::NewEvent;
pub use head::RoomHead;
pub use pdu::Pdu;
