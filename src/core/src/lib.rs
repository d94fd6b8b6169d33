//! Hearth's core: configuration, errors, the [`Homeserver`] handle, storage (the only SQL in
//! Hearth), accounts and devices. No routes and no outbound HTTP live here: the client API and
//! federation crates are thin layers over these functions.

pub mod account_data;
pub mod accounts;
pub mod config;
pub mod delivery;
pub mod e2ee;
pub mod error;
pub mod filters;
pub mod homeserver;
pub mod http_api;
pub mod media;
pub mod metrics;
pub mod notifier;
pub mod presence;
pub mod push;
pub mod rate_limit;
pub mod receipt_activity;
pub mod receipts;
pub mod remote_rooms;
pub mod room_locks;
pub mod rooms;
pub mod search;
pub mod signing_key;
pub mod storage;
pub mod sync;
pub mod time;
pub mod to_device;
pub mod typing;
pub mod user_cache;

pub use config::Config;
pub use error::{Error, Result};
pub use homeserver::Homeserver;
