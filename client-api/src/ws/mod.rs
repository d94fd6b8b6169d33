//! The WebSocket channel, `GET /_hearth/client/v1/ws` (docs/WEBSOCKET.md): what `/sync` would
//! carry for the device, pushed as JSON text frames as it happens, and the simple chat vocabulary
//! (`send_message`, `new_message`, `message_status`…) on top of the same data.
//!
//! The socket runs `sync::sync` in a loop, so there is no second source of truth: every frame
//! batch ends with the sync token it reaches, and reconnecting with `?since=` that token resumes
//! exactly there. Client frames call the same core functions as the client-API handlers.

mod commands;
mod connection;
mod delivery;
pub(crate) mod vocabulary;

use axum::{
    extract::{FromRequestParts, Request, ws::WebSocketUpgrade},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hearth_core::{
    Error, Homeserver,
    filters::{self, SyncFilter},
    sync::SyncToken,
};
use ruma::{api::client::filter::FilterDefinition, api::error::ErrorKind};
use serde::Deserialize;

use crate::{
    error::{ApiError, Result},
    ruma_wrapper::{Authenticate, access_token},
};

/// The path of the endpoint.
pub const PATH: &str = "/_hearth/client/v1/ws";

/// Largest client frame accepted: a message event is at most 64 KiB, plus the frame around it.
const MAX_CLIENT_FRAME: usize = 96 << 10;

/// Which frames a socket receives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One `{"type":"sync", ...}` frame per sync response.
    #[default]
    Sync,
    /// The chat vocabulary (`new_message`, `message_status`, `typing_update`, `user_online`),
    /// each batch closed by a `{"type":"position","next_batch":...}` frame.
    Simple,
    /// The vocabulary frames of each batch, then its sync frame.
    Both,
}

/// The query string.
#[derive(Debug, Deserialize)]
struct Params {
    /// Where to resume: a `next_batch` this device received. None: an initial sync first.
    since: Option<String>,
    /// A filter ID or an inline filter definition, as `/sync` takes.
    filter: Option<String>,
    #[serde(default)]
    format: Format,
}

/// `GET /_hearth/client/v1/ws`: authenticates with the access token (`Authorization: Bearer` or
/// the `access_token` query parameter, since browsers cannot set headers on a WebSocket), checks
/// the parameters, then upgrades. Failures are ordinary Matrix error responses.
pub async fn connect(hs: axum::extract::State<Homeserver>, request: Request) -> Response {
    match upgrade(hs.0, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn upgrade(hs: Homeserver, request: Request) -> Result<Response> {
    let (mut parts, _body) = request.into_parts();
    let user = ruma::api::auth_scheme::AccessToken::authenticate(&hs, &parts).await?;
    let token = access_token(&parts)?.unwrap_or_default().to_owned();
    // Unknown parameters (`access_token`) are ignored.
    let axum::extract::Query(params) = axum::extract::Query::<Params>::try_from_uri(&parts.uri)
        .map_err(|rejection| Error::invalid_param(rejection.body_text()))?;
    let since = params.since.as_deref().map(SyncToken::parse).transpose()?;
    let filter = match params.filter.as_deref() {
        None => SyncFilter::default(),
        Some(inline) if inline.trim_start().starts_with('{') => SyncFilter::inline(
            &serde_json::from_str::<FilterDefinition>(inline)
                .map_err(|_| Error::bad_json("The filter is not a valid filter definition"))?,
        )?,
        Some(id) => filters::stored(&hs, &user.user_id, id).await?,
    };
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &hs).await.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::Unrecognized, rejection.body_text())
    })?;
    let session = connection::Session { hs, user, token, since, filter, format: params.format };
    Ok(upgrade
        // Idle sockets must be cheap: tungstenite reserves its read buffer up front (and grows it
        // for a larger frame); client frames are small.
        .read_buffer_size(1 << 10)
        .write_buffer_size(0)
        .max_message_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| connection::run(session, socket)))
}
