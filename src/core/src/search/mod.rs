//! Search: full-text search over room events (`POST /search`) and the user directory
//! (`POST /user_directory/search`). The index itself lives in `storage::search`; it is fed in
//! the transaction that stores each event ([`index::record`]) and emptied of redacted events.

pub mod count;
pub mod index;
pub mod rank;
pub mod room_events;
pub mod token;
pub mod user_directory;
