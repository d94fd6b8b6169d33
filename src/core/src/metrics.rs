//! Prometheus metrics for one homeserver: request counts and latencies, database pool usage.
//! Each [`crate::Homeserver`] owns its own registry (no global recorder), so test servers sharing
//! a process do not mix their numbers.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::storage::Db;

/// Labels of one HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route template (never the raw path: IDs would explode cardinality).
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route template.
    pub route: String,
}

/// The metrics one server records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_size: Gauge,
    pool_idle: Gauge,
    send_batch_size: Histogram,
    send_batch_seconds: Family<PhaseLabels, Histogram>,
    websockets_open: Gauge,
    websockets_closed: Family<CloseLabels, Counter>,
}

/// Labels of a closed WebSocket.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// Why it closed: `client`, `slow` (did not read), `silent` (no pong), `token`
    /// (the access token went), `shutdown`, `error`.
    pub reason: &'static str,
}

/// Labels of a group-commit phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `check` (begin, transaction lookups, build, sign, authorise) or `write` (statements and
    /// commit).
    pub phase: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hearth");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0])
        });
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let pool_size = Gauge::default();
        registry.register("db_pool_connections", "Open database connections", pool_size.clone());
        let pool_idle = Gauge::default();
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        let send_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
        registry.register(
            "send_batch_size",
            "Message sends written per group commit",
            send_batch_size.clone(),
        );
        let send_batch_seconds = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1])
        });
        registry.register(
            "send_batch_seconds",
            "Time a group commit spends per phase",
            send_batch_seconds.clone(),
        );
        let websockets_open = Gauge::default();
        registry.register("websockets_open", "Open WebSocket connections", websockets_open.clone());
        let websockets_closed = Family::<CloseLabels, Counter>::default();
        registry.register(
            "websockets_closed",
            "WebSocket connections closed, by reason",
            websockets_closed.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            pool_size,
            pool_idle,
            send_batch_size,
            send_batch_seconds,
            websockets_open,
            websockets_closed,
        }
    }

    /// Records a WebSocket opening.
    pub fn websocket_opened(&self) {
        self.websockets_open.inc();
    }

    /// Records a WebSocket closing, and why (see [`CloseLabels`]).
    pub fn websocket_closed(&self, reason: &'static str) {
        self.websockets_open.dec();
        self.websockets_closed.get_or_create(&CloseLabels { reason }).inc();
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.latency
            .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
            .observe(seconds);
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }

    /// Records one group commit of message sends.
    pub fn observe_send_batch(&self, size: usize, check_seconds: f64, write_seconds: f64) {
        self.send_batch_size.observe(size as f64);
        self.send_batch_seconds.get_or_create(&PhaseLabels { phase: "check" }).observe(check_seconds);
        self.send_batch_seconds.get_or_create(&PhaseLabels { phase: "write" }).observe(write_seconds);
    }

    /// The Prometheus text exposition of every metric, with pool gauges read now.
    pub fn render(&self, db: &Db) -> String {
        let (size, idle) = db.pool_stats();
        self.pool_size.set(i64::from(size));
        self.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
