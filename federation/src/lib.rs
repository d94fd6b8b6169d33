//! Hearth's Server-Server API: `/_matrix/key/**` and (as it grows) `/_matrix/federation/**`,
//! X-Matrix request authentication, server discovery and the outbound sender.

pub mod keys;

use axum::{Router, routing::get};
use hearth_core::Homeserver;

/// Every federation route, without middleware (the composition root adds that).
pub fn router() -> Router<Homeserver> {
    Router::new()
        .route("/_matrix/key/v2/server", get(keys::server_keys))
        .route("/_matrix/key/v2/server/{key_id}", get(keys::server_keys))
}
