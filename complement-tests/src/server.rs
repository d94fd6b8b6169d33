//! Starting and stopping test servers.

use std::time::Duration;

use hearth::{Config, Server};
use rand::{Rng, distributions::Alphanumeric};
use sqlx::{Connection, Executor, PgConnection};

use crate::client::Client;

/// The shared secret of test servers' admin registration API.
pub const SHARED_SECRET: &str = "complement-shared-secret";

/// Which database a test server runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in the server's temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server at this maintenance URL.
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend, unless switched off with `HEARTH_TEST_POSTGRES_URL=off`.
    pub fn postgres() -> Option<Backend> {
        let url = std::env::var("HEARTH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        (url != "off").then_some(Backend::Postgres(url))
    }
}

/// A running Hearth server with its own database, torn down when dropped.
pub struct TestServer {
    server: Option<Server>,
    /// Base URL of the client API, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// The server name in its user IDs.
    pub server_name: String,
    dir: tempfile::TempDir,
    database: Option<(String, String)>,
    config: Config,
}

impl TestServer {
    /// Starts a server with the test defaults: open registration, no rate limits.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server after `tweak` has adjusted the test defaults.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        let server_name = format!("hs-{suffix}.test");
        let mut config = Config {
            server_name: server_name.as_str().try_into().expect("valid server name"),
            ..Config::default()
        };
        config.listen.client = "127.0.0.1:0".parse().expect("valid address");
        config.storage.data_dir = dir.path().to_owned();
        config.registration.enabled = true;
        config.registration.shared_secret = SHARED_SECRET.to_owned();
        config.rate_limits.enabled = false;
        config.metrics.enabled = true;
        let database = match &backend {
            Backend::Sqlite => {
                config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
                None
            }
            Backend::Postgres(admin_url) => {
                let name = format!("hearth_test_{suffix}");
                create_database(admin_url, &name).await;
                config.database.url = replace_database(admin_url, &name);
                config.database.max_connections = 5;
                Some((admin_url.clone(), name))
            }
        };
        tweak(&mut config);
        let server = Server::start(config.clone()).await.expect("starting the test server");
        let base_url = format!("http://{}", server.client_addr());
        TestServer { server: Some(server), base_url, server_name, dir, database, config }
    }

    /// A client without an access token.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }

    /// The user ID a localpart gets on this server.
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }

    /// Base URL of the federation TLS listener, e.g. `https://127.0.0.1:41235` (the server must
    /// have been started with federation on, see [`crate::federation`]).
    pub fn federation_url(&self) -> String {
        let server = self.server.as_ref().expect("the server is running");
        let address = server.federation_addr().expect("federation is enabled on this server");
        format!("https://{address}")
    }

    /// A client of the federation listener (trusting the test CA), not signing anything.
    pub fn federation_client(&self) -> Client {
        Client::with_http(&self.federation_url(), crate::federation::test_ca().http_client())
    }

    /// Sends federation requests for `server_name` to `url` from now on (and after restarts).
    pub fn add_federation_peer(&mut self, server_name: &str, url: &str) {
        self.config.federation.destination_overrides.insert(server_name.to_owned(), url.to_owned());
        let server = self.server.as_ref().expect("the server is running");
        let name = <&ruma::ServerName>::try_from(server_name).expect("a valid server name");
        server.federation().client().add_destination_override(name, url);
    }

    /// The running server's federation handle.
    pub fn federation(&self) -> &hearth::Federation {
        self.server.as_ref().expect("the server is running").federation()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server gracefully and starts it again on the same data, on the same port (what
    /// it kept in memory is gone; clients keep their tokens).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            let mut config = self.config.clone();
            config.listen.client = server.client_addr();
            if let Some(address) = server.federation_addr() {
                config.federation.listen = address;
            }
            server.stop().await.expect("stopping the test server");
            self.server = Some(Server::start(config).await.expect("restarting the test server"));
        }
    }

    /// Stops the server gracefully (dropping does too, less politely).
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("stopping the test server");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some((admin_url, name)) = self.database.take() {
            // Drop runs inside the test's runtime, which cannot be blocked on; a helper thread
            // with its own runtime drops the database.
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(drop_database(&admin_url, &name));
                }
            });
            let _ = dropper.join();
        }
    }
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {admin_url}: {e}. Start it, point HEARTH_TEST_POSTGRES_URL \
             at one, or set HEARTH_TEST_POSTGRES_URL=off to skip the PostgreSQL variants"
        )
    })
}

async fn create_database(admin_url: &str, name: &str) {
    let mut conn = admin_connection(admin_url).await;
    conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("creating the test database");
}

async fn drop_database(admin_url: &str, name: &str) {
    let mut conn = admin_connection(admin_url).await;
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    for _ in 0..10 {
        if conn.execute(sql.as_str()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("warning: could not drop test database {name}");
}

/// `postgres://u@h:p/postgres` with the database name replaced.
fn replace_database(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_name_is_swapped_and_the_rest_kept() {
        assert_eq!(replace_database("postgres://p@h:5432/postgres", "x"), "postgres://p@h:5432/x");
        assert_eq!(replace_database("postgres://p@h:5432", "x"), "postgres://p@h:5432/x");
        assert_eq!(
            replace_database("postgres://p@h/postgres?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
    }
}
