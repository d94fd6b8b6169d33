//! Per-request observability: a tracing span (method, matched route, user, status, latency) and
//! Prometheus counters, recorded for every request including errors and fallbacks.
//!
//! Both layers are plain tower services whose futures wrap the inner one in place: axum's
//! `from_fn` boxes the middleware's future, the inner service and its future again for every
//! request, and a waiting long-poll keeps them all.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::{self, Method},
    response::{IntoResponse, Response},
};
use hearth_core::Homeserver;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty, instrument::Instrumented};

/// Outer layer: wraps each request in a span and records its outcome. The matched route is
/// only known after routing, so [`TagRoute`] hands it back on the response.
#[derive(Clone)]
pub struct Observe(pub Homeserver);

impl<S> Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { hs: self.0.clone(), inner }
    }
}

/// The service [`Observe`] makes.
#[derive(Clone)]
pub struct Observed<S> {
    hs: Homeserver,
    inner: S,
}

impl<S, B> Service<Request> for Observed<S>
where
    S: Service<Request, Response = http::Response<B>>,
    http::Response<B>: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Observing<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method().clone();
        let span = tracing::info_span!("request", %method, route = Empty, user = Empty, status = Empty, latency_ms = Empty);
        let inner = span.in_scope(|| self.inner.call(request)).instrument(span.clone());
        Observing { inner, hs: self.hs.clone(), method, span, started: Instant::now() }
    }
}

pin_project_lite::pin_project! {
    /// A request on its way through [`Observed`].
    pub struct Observing<F> {
        #[pin]
        inner: Instrumented<F>,
        hs: Homeserver,
        method: Method,
        span: Span,
        started: Instant,
    }
}

impl<F, B, E> Future for Observing<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    http::Response<B>: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?.into_response();
        let elapsed = this.started.elapsed();
        let route = response.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
        let status = response.status().as_u16();
        this.span.record("route", route);
        this.span.record("status", status);
        this.span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
        this.span.in_scope(|| tracing::info!("answered"));
        this.hs.metrics().observe_request(this.method.as_str(), route, status, elapsed.as_secs_f64());
        Poll::Ready(Ok(response))
    }
}

/// Route-level layer: copies the matched route template onto the response.
#[derive(Clone, Copy)]
pub struct TagRoute;

impl<S> Layer<S> for TagRoute {
    type Service = Tagged<S>;

    fn layer(&self, inner: S) -> Tagged<S> {
        Tagged(inner)
    }
}

/// The service [`TagRoute`] makes.
#[derive(Clone)]
pub struct Tagged<S>(S);

impl<S: Service<Request, Response = Response>> Service<Request> for Tagged<S> {
    type Response = Response;
    type Error = S::Error;
    type Future = Tagging<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let matched = request.extensions().get::<MatchedPath>().cloned();
        Tagging { inner: self.0.call(request), matched }
    }
}

pin_project_lite::pin_project! {
    /// A routed request on its way through [`Tagged`].
    pub struct Tagging<F> {
        #[pin]
        inner: F,
        matched: Option<MatchedPath>,
    }
}

impl<F: Future<Output = Result<Response, E>>, E> Future for Tagging<F> {
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(matched) = this.matched.take() {
            response.extensions_mut().insert(matched);
        }
        Poll::Ready(Ok(response))
    }
}
