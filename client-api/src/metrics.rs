//! `GET /metrics`: Prometheus text exposition.

use axum::{extract::State, http::header, response::IntoResponse};
use hearth_core::Homeserver;

/// Renders every metric of this server.
pub async fn render(State(hs): State<Homeserver>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], hs.metrics().render(hs.db()))
}
