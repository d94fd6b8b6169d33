//! Per-request observability: a tracing span (method, matched route, user, status, latency) and
//! Prometheus counters, recorded for every request including errors and fallbacks.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use hearth_core::Homeserver;
use tracing::{Instrument, field::Empty};

/// Outer middleware: wraps the request in a span and records its outcome. The matched route is
/// only known after routing, so [`tag_route`] hands it back on the response.
pub async fn observe(State(hs): State<Homeserver>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let span = tracing::info_span!("request", %method, route = Empty, user = Empty, status = Empty, latency_ms = Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let route = response.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let status = response.status().as_u16();
    span.record("route", route);
    span.record("status", status);
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::info!("answered"));
    hs.metrics().observe_request(method.as_str(), route, status, elapsed.as_secs_f64());
    response
}

/// Route-level middleware: copies the matched route template onto the response.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}
