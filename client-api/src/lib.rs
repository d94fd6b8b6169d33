//! Hearth's Client-Server API: `/_matrix/client/**`, `/_matrix/media/**`,
//! `/.well-known/matrix/client` and the Synapse-compatible admin endpoints. Handlers are thin:
//! typed ruma request in, one call into `hearth_core`, typed response out.

pub mod account;
pub mod account_data;
pub mod admin;
pub mod alias;
pub mod backup;
pub mod context;
pub mod convert;
pub mod defer;
pub mod device;
pub mod directory;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod json;
pub mod keys;
pub mod media;
pub mod membership;
pub mod message;
pub mod metrics;
pub mod notifications;
pub mod observe;
pub mod presence;
pub mod profile;
pub mod push;
pub mod pushers;
pub mod read_marker;
pub mod receipt;
pub mod redact;
pub mod relations;
pub mod rest;
pub mod room;
pub mod ruma_wrapper;
pub mod search;
pub mod session;
pub mod state;
pub mod sync;
pub mod tags;
pub mod threads;
pub mod to_device;
pub mod typing;
pub mod user_directory;
pub mod voip;
pub mod ws;

use axum::{Router, routing::get};
use hearth_core::Homeserver;

use crate::ruma_wrapper::RouterExt;

/// Every client API route, without middleware (the composition root adds that).
pub fn router(hs: &Homeserver) -> Router<Homeserver> {
    let router = Router::new()
        .ruma(discovery::versions)
        .ruma(discovery::well_known_client)
        .ruma_raw(discovery::capabilities)
        .ruma(account::register)
        .ruma(account::username_available)
        .ruma(account::registration_token_validity)
        .ruma(account::whoami)
        .ruma(account::change_password)
        .ruma(account::deactivate)
        .ruma(session::login_types)
        .ruma(session::login)
        .ruma(session::logout)
        .ruma(session::logout_all)
        .ruma(device::list)
        .ruma(device::get)
        .ruma(device::update)
        .ruma(device::delete)
        .ruma(device::delete_many)
        .ruma_fed(profile::get)
        .ruma_fed(profile::get_displayname)
        .ruma(profile::set_displayname)
        .ruma_fed(profile::get_avatar)
        .ruma(profile::set_avatar)
        .ruma(filter::create)
        .ruma(filter::get)
        .ruma_deferrable(sync::sync_events)
        .ruma(push::get_all)
        .ruma(push::get_global)
        .ruma(push::get)
        .ruma(push::set)
        .ruma(push::delete)
        .ruma(push::get_enabled)
        .ruma(push::set_enabled)
        .ruma(push::get_actions)
        .ruma(push::set_actions)
        .ruma(pushers::get)
        .ruma(pushers::set)
        .ruma(notifications::get)
        .ruma(account_data::get_global)
        .ruma(account_data::set_global)
        .ruma(account_data::get_room)
        .ruma(account_data::set_room)
        .ruma_raw(tags::get)
        .ruma(tags::set)
        .ruma(tags::delete)
        .ruma(read_marker::set)
        .ruma(receipt::create)
        .ruma(typing::create)
        .ruma(to_device::send)
        .ruma(presence::get)
        .ruma(presence::set)
        .ruma(voip::turn_server)
        .ruma(media::config::config)
        .ruma(media::config::legacy_config)
        .ruma_streamed(media::upload::upload)
        .ruma(media::upload::create)
        .ruma_streamed(media::upload::upload_to)
        .ruma_raw_fed(media::download::download)
        .ruma_raw_fed(media::download::download_as)
        .ruma_raw_fed(media::download::thumbnail)
        .ruma_raw_fed(media::download::legacy_download)
        .ruma_raw_fed(media::download::legacy_download_as)
        .ruma_raw_fed(media::download::legacy_thumbnail)
        .ruma(backup::create_version)
        .ruma(backup::latest_version)
        .ruma(backup::get_version)
        .ruma(backup::update_version)
        .ruma(backup::delete_version)
        .ruma(backup::put_keys)
        .ruma(backup::put_room_keys)
        .ruma(backup::put_session_key)
        .ruma(backup::get_keys)
        .ruma(backup::get_room_keys)
        .ruma(backup::get_session_key)
        .ruma(backup::delete_keys)
        .ruma(backup::delete_room_keys)
        .ruma(backup::delete_session_key)
        .ruma(keys::upload)
        .ruma_fed(keys::query)
        .ruma_fed(keys::claim)
        .ruma(keys::changes)
        .ruma(keys::upload_signing_keys)
        .ruma(keys::upload_signatures)
        .ruma(room::create_room)
        .ruma(room::get_event)
        .ruma(room::upgrade)
        .ruma(room::timestamp_to_event)
        .ruma(redact::redact)
        .ruma(relations::get)
        .ruma(relations::get_with_rel_type)
        .ruma(relations::get_with_rel_type_and_event_type)
        .ruma(threads::get)
        .ruma(alias::create)
        .ruma_fed(alias::get)
        .ruma(alias::delete)
        .ruma(alias::room_aliases)
        .ruma(directory::get_visibility)
        .ruma(directory::set_visibility)
        .ruma_fed(directory::public_rooms)
        .ruma_fed(directory::public_rooms_filtered)
        .ruma(membership::join_by_id)
        .ruma_fed(membership::join_by_id_or_alias)
        .ruma(membership::invite)
        .ruma(membership::knock)
        .ruma(membership::leave)
        .ruma(membership::kick)
        .ruma(membership::ban)
        .ruma(membership::unban)
        .ruma(membership::forget)
        .ruma(membership::joined_rooms)
        .ruma(membership::joined_members)
        .ruma(membership::members)
        .ruma(message::send)
        .ruma(message::messages)
        .ruma(context::get_context)
        .ruma(state::get_all)
        .ruma(state::get_one)
        .ruma(state::put)
        .ruma(search::search_events)
        .ruma(user_directory::search_users)
        .route("/_synapse/admin/v1/register", get(admin::register_nonce).post(admin::register))
        .route(ws::PATH, get(ws::connect))
        .merge(rest::router());
    if hs.config().metrics.enabled { router.route("/metrics", get(metrics::render)) } else { router }
}
