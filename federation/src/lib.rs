//! Hearth's Server-Server API: `/_matrix/key/**` and `/_matrix/federation/**`, X-Matrix request
//! authentication, server discovery, the outbound client and the TLS listener.

pub mod backfill;
pub mod client;
pub mod device;
pub mod directory;
pub mod dns;
pub mod edu;
pub mod error;
pub mod handle;
pub mod history;
pub mod ingest;
pub mod invite;
pub mod join;
pub mod key_ring;
pub mod keys;
pub mod listener;
pub mod media;
pub mod membership;
pub mod query;
pub mod resolver;
pub mod ruma_wrapper;
pub mod sender;
pub mod tls;
pub mod transactions;
pub mod user_keys;
pub mod version;

use axum::{Router, routing::get};

pub use crate::{
    client::FedClient,
    error::{FedApiError, FedError, FedResult, KeyError},
    handle::{Federation, WeakFederation},
    key_ring::KeyRing,
    ruma_wrapper::{FedResponse, FedRouterExt, FedRuma},
};

/// Every federation route, without middleware (the composition root adds that). One line per
/// endpoint.
pub fn router() -> Router<Federation> {
    key_routes()
        .ruma(keys::query)
        .ruma(keys::query_batch)
        .ruma(version::get_server_version)
        .ruma(query::get_profile)
        .ruma(query::get_room_information)
        .ruma(user_keys::query)
        .ruma(user_keys::claim)
        .ruma(device::get_devices)
        .ruma(media::get_content)
        .ruma(media::get_content_thumbnail)
        .ruma(directory::get_public_rooms)
        .ruma(directory::get_public_rooms_filtered)
        .ruma(transactions::send)
        .ruma(membership::make_join)
        .ruma(membership::send_join)
        .ruma(membership::make_leave)
        .ruma(membership::send_leave)
        .ruma(membership::make_knock)
        .ruma(membership::send_knock)
        .ruma(invite::invite)
        .ruma(history::event)
        .ruma(history::state)
        .ruma(history::state_ids)
        .ruma(history::event_auth)
        .ruma(history::missing_events)
        .ruma(history::backfill)
}

/// Our own key, which the client listener serves too.
pub fn key_routes() -> Router<Federation> {
    Router::new()
        .route("/_matrix/key/v2/server", get(keys::server_keys))
        .route("/_matrix/key/v2/server/{key_id}", get(keys::server_keys))
}
