//! Hearth's Server-Server API: `/_matrix/key/**` and `/_matrix/federation/**`, X-Matrix request
//! authentication, server discovery, the outbound client and the TLS listener.

pub mod client;
pub mod dns;
pub mod error;
pub mod handle;
pub mod key_ring;
pub mod keys;
pub mod listener;
pub mod resolver;
pub mod ruma_wrapper;
pub mod tls;

use axum::{Router, routing::get};

pub use crate::{
    client::FedClient,
    error::{FedApiError, FedError, FedResult, KeyError},
    handle::Federation,
    key_ring::KeyRing,
    ruma_wrapper::{FedResponse, FedRouterExt, FedRuma},
};

/// Every federation route, without middleware (the composition root adds that). One line per
/// endpoint.
pub fn router() -> Router<Federation> {
    key_routes().ruma(keys::query).ruma(keys::query_batch)
}

/// Our own key, which the client listener serves too.
pub fn key_routes() -> Router<Federation> {
    Router::new()
        .route("/_matrix/key/v2/server", get(keys::server_keys))
        .route("/_matrix/key/v2/server/{key_id}", get(keys::server_keys))
}
