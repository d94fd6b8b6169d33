//! The black-box harness: start real Hearth servers on random loopback ports, each with its own
//! fresh database (a SQLite file in a temporary directory, or a new PostgreSQL database dropped
//! afterwards), and talk plain HTTP to them with [`Client`].
//!
//! Scenarios are written once with [`scenario!`] and run on both backends. PostgreSQL is found
//! at `HEARTH_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); set it
//! to `off` to skip the PostgreSQL variants on a machine without PostgreSQL.

pub mod client;
pub mod e2ee;
pub mod fake_peer;
pub mod federation;
pub mod peer_host;
pub mod peer_room;
pub mod rooms;
pub mod server;

pub use client::{Client, Response};
pub use fake_peer::FakePeer;
pub use federation::Cluster;
pub use server::{Backend, TestServer};

/// Defines a scenario that runs against a fresh server on each backend:
///
/// ```ignore
/// scenario!(reg_1_dummy_flow, |backend| {
///     let hs = TestServer::start(backend).await;
///     ...
/// });
/// ```
/// expands to a module `reg_1_dummy_flow` with the tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! scenario {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::Backend) $body

            #[tokio::test]
            async fn sqlite() {
                run($crate::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                match $crate::Backend::postgres() {
                    Some(backend) => run(backend).await,
                    None => eprintln!("PostgreSQL variant skipped (HEARTH_TEST_POSTGRES_URL=off)"),
                }
            }
        }
    };
}
