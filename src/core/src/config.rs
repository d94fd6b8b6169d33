//! Hearth's configuration: `config.toml` overlaid with `HEARTH__SECTION__KEY` environment
//! variables. Every field is documented in the example `config.toml` at the repository root.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use ruma::{OwnedServerName, RoomVersionId};
use serde::{Deserialize, Serialize};

/// The whole configuration of one homeserver.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The domain in user IDs and room aliases (`@alice:example.org`). Never change it once users
    /// exist.
    pub server_name: OwnedServerName,
    /// The URL clients reach this server at, advertised in `/.well-known/matrix/client`.
    pub public_baseurl: String,
    /// Where the client API listens.
    pub listen: ListenConfig,
    /// The database (SQLite file or PostgreSQL server).
    pub database: DatabaseConfig,
    /// Where files (signing key, media) live.
    pub storage: StorageConfig,
    /// Who may create accounts and how.
    pub registration: RegistrationConfig,
    /// Request size limits.
    pub limits: LimitsConfig,
    /// Per-user and per-IP rate limits.
    pub rate_limits: RateLimitConfig,
    /// Log format and level.
    pub logging: LoggingConfig,
    /// Room defaults.
    pub rooms: RoomsConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// The media repository.
    pub media: MediaConfig,
    /// Presence.
    pub presence: PresenceConfig,
    /// The WebSocket channel (`/_hearth/client/v1/ws`).
    pub websocket: WebSocketConfig,
    /// Delivery receipts (`io.hearth.delivered`).
    pub delivery: DeliveryConfig,
    /// The Server-Server API: its TLS listener, outbound TLS and server discovery.
    pub federation: FederationConfig,
}

/// Federation settings (docs/FEDERATION.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Whether the federation listener runs (and other servers are talked to).
    pub enabled: bool,
    /// Where the federation TLS listener binds, e.g. `0.0.0.0:8448`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// PEM certificate chain of the federation listener (required unless
    /// `generate_self_signed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the federation listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Without `tls_cert`/`tls_key`, generate a self-signed certificate for the server name at
    /// start (development only: other servers will not trust it).
    pub generate_self_signed: bool,
    /// A PEM file of CA certificates trusted for outbound federation in addition to the system's
    /// roots (private deployments, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ca_file: Option<PathBuf>,
    /// Let outbound federation connect to private, loopback and link-local addresses. Off, such
    /// addresses are refused (a server name must not make us reach into our own network).
    pub allow_private_addresses: bool,
    /// Server name → base URL (`https://host:port`) used instead of server discovery. Logged at
    /// start.
    pub destination_overrides: BTreeMap<String, String>,
    /// Notary servers asked for keys a server does not serve itself. May be empty.
    pub trusted_key_servers: Vec<OwnedServerName>,
    /// Verify outbound TLS certificates. Turn off only for local experiments.
    pub verify_tls: bool,
}

/// Delivery receipt settings (docs/WEBSOCKET.md › Delivery receipts).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Which acknowledgements record `io.hearth.delivered` receipts. Each is one receipt write
    /// per recipient device and room per acknowledged batch, so a message to a room of N
    /// members costs up to N writes.
    pub receipts: DeliveryReceipts,
}

/// Which acknowledgements record delivery.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryReceipts {
    /// None: no `delivered` status.
    Off,
    /// WebSocket pongs and acks.
    Websocket,
    /// Those, and each `/sync` request acknowledging the previous response.
    All,
}

/// WebSocket channel settings (docs/WEBSOCKET.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    /// The server pings every socket this often; a socket that sent nothing (not even a pong)
    /// for two intervals is closed.
    pub ping_interval_secs: u64,
    /// A frame the client has not taken within this many milliseconds (its receive buffer and
    /// ours are full) closes the socket with code 4008: a client that does not read must not
    /// hold server memory.
    pub send_timeout_ms: u64,
}

/// Presence settings (spec: Client-Server API › Presence).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// A user the server has not seen for this many seconds (no `/sync` with `set_presence`
    /// other than offline, no presence change) is set offline. A syncing client is seen at least
    /// once a minute, so keep this well above 60.
    pub offline_after_secs: u64,
}

/// Media repository settings (spec: Client-Server API › Content repository). The upload size
/// limit is `limits.max_upload_bytes`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Serve the deprecated unauthenticated `/_matrix/media/v3/download` and `/thumbnail`
    /// endpoints. Off, they answer 404 `M_NOT_FOUND` (the spec's "freeze" since Matrix 1.12).
    pub legacy_unauthenticated: bool,
    /// Total bytes each user may upload; over it, uploads get 403 `M_FORBIDDEN`. 0: unlimited.
    pub user_quota_bytes: u64,
    /// How many `mxc://` URIs a user may hold reserved (`POST /media/v1/create`) without content
    /// yet; more get 429 `M_LIMIT_EXCEEDED`.
    pub max_pending_uploads: u32,
}

/// Metrics exposition.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics` on the client listener. Keep it off when that
    /// listener is public, or restrict `/metrics` at the reverse proxy.
    pub enabled: bool,
}

/// Listener addresses.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Client-Server API address, e.g. `127.0.0.1:8008`. Port 0 picks a free port.
    pub client: SocketAddr,
}

/// Database connection settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user@host:port/dbname`.
    pub url: String,
    /// Upper bound on pooled connections.
    pub max_connections: u32,
}

/// File storage settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for the signing key and media; created on start.
    pub data_dir: PathBuf,
}

/// Registration policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Whether `POST /register` accepts new accounts at all.
    pub enabled: bool,
    /// When non-empty, registration requires one of these tokens
    /// (`m.login.registration_token`).
    pub tokens: Vec<String>,
    /// Shared secret for `/_synapse/admin/v1/register`; empty disables that endpoint.
    pub shared_secret: String,
    /// Minimum password length accepted at registration and password change.
    pub min_password_length: usize,
}

/// Size limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest JSON request body accepted, in bytes; larger gets 413 `M_TOO_LARGE`.
    pub max_request_bytes: usize,
    /// Largest media upload accepted, in bytes (advertised as `m.upload.size`).
    pub max_upload_bytes: u64,
}

/// Token-bucket rate limits, keyed by user (or by IP for unauthenticated requests).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether rate-limited endpoints are limited at all.
    pub enabled: bool,
    /// Sustained requests per second per user or IP.
    pub per_second: u32,
    /// Requests that may arrive at once before the limit bites.
    pub burst: u32,
}

/// Logging settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `pretty` (human) or `json` (one object per line).
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `hearth=debug,sqlx=warn`. `RUST_LOG` overrides it.
    pub level: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Room settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    /// The version new rooms are created in unless the client asks for another. Accepts `"12"`
    /// or `12` (environment overrides arrive as numbers).
    #[serde(deserialize_with = "room_version")]
    pub default_version: RoomVersionId,
}

fn room_version<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<RoomVersionId, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(u64),
    }
    let text = match Version::deserialize(deserializer)? {
        Version::Text(text) => text,
        Version::Number(n) => n.to_string(),
    };
    RoomVersionId::try_from(text).map_err(serde::de::Error::custom)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: ruma::server_name!("localhost").to_owned(),
            public_baseurl: "http://127.0.0.1:8008".to_owned(),
            listen: ListenConfig { client: SocketAddr::from(([127, 0, 0, 1], 8008)) },
            database: DatabaseConfig { url: "sqlite://data/hearth.db".to_owned(), max_connections: 16 },
            storage: StorageConfig { data_dir: PathBuf::from("data") },
            registration: RegistrationConfig {
                enabled: false,
                tokens: Vec::new(),
                shared_secret: String::new(),
                min_password_length: 8,
            },
            limits: LimitsConfig { max_request_bytes: 1 << 20, max_upload_bytes: 50 << 20 },
            rate_limits: RateLimitConfig { enabled: true, per_second: 10, burst: 50 },
            logging: LoggingConfig {
                format: LogFormat::Pretty,
                level: "info,sqlx=warn,ruma_state_res=warn".to_owned(),
            },
            rooms: RoomsConfig { default_version: RoomVersionId::V12 },
            metrics: MetricsConfig { enabled: false },
            media: MediaConfig { legacy_unauthenticated: false, user_quota_bytes: 0, max_pending_uploads: 5 },
            presence: PresenceConfig { offline_after_secs: 300 },
            websocket: WebSocketConfig { ping_interval_secs: 30, send_timeout_ms: 10_000 },
            delivery: DeliveryConfig { receipts: DeliveryReceipts::Websocket },
            federation: FederationConfig {
                enabled: false,
                listen: SocketAddr::from(([0, 0, 0, 0], 8448)),
                tls_cert: None,
                tls_key: None,
                generate_self_signed: false,
                extra_ca_file: None,
                allow_private_addresses: false,
                destination_overrides: BTreeMap::new(),
                trusted_key_servers: Vec::new(),
                verify_tls: true,
            },
        }
    }
}

impl Config {
    /// Loads the configuration: built-in defaults, then the TOML file (if it exists), then
    /// `HEARTH__SECTION__KEY` environment variables. The error names the offending key.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("HEARTH__").split("__").lowercase(true))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    /// A copy safe to print: passwords and secrets replaced by `***`.
    pub fn redacted(&self) -> Config {
        let mut copy = self.clone();
        if !copy.registration.shared_secret.is_empty() {
            copy.registration.shared_secret = "***".to_owned();
        }
        copy.registration.tokens = copy.registration.tokens.iter().map(|_| "***".to_owned()).collect();
        copy.database.url = crate::storage::redact_url(&copy.database.url);
        copy
    }

    /// Checks what serde cannot: cross-field and value constraints.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database.url;
        anyhow::ensure!(
            url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"),
            "invalid configuration: database.url must start with sqlite: or postgres:, got {url:?}"
        );
        anyhow::ensure!(
            self.database.max_connections > 0,
            "invalid configuration: database.max_connections must be at least 1"
        );
        anyhow::ensure!(
            !self.rate_limits.enabled || (self.rate_limits.per_second > 0 && self.rate_limits.burst > 0),
            "invalid configuration: rate_limits.per_second and rate_limits.burst must be positive"
        );
        anyhow::ensure!(
            self.rooms.default_version.rules().is_some(),
            "invalid configuration: rooms.default_version {} is not a supported room version",
            self.rooms.default_version
        );
        anyhow::ensure!(
            self.websocket.ping_interval_secs > 0 && self.websocket.send_timeout_ms > 0,
            "invalid configuration: websocket.ping_interval_secs and websocket.send_timeout_ms must be positive"
        );
        self.federation.validate()
    }
}

impl FederationConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.enabled && !self.generate_self_signed {
            anyhow::ensure!(
                self.tls_cert.is_some() && self.tls_key.is_some(),
                "invalid configuration: federation.tls_cert and federation.tls_key are required \
                 unless federation.generate_self_signed is on"
            );
        }
        for (server, url) in &self.destination_overrides {
            anyhow::ensure!(
                <&ruma::ServerName>::try_from(server.as_str()).is_ok(),
                "invalid configuration: federation.destination_overrides: {server:?} is not a server name"
            );
            let uri: http::Uri = url.parse().map_err(|e| {
                anyhow::anyhow!("invalid configuration: federation.destination_overrides.{server}: {e}")
            })?;
            anyhow::ensure!(
                uri.scheme_str() == Some("https")
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|p| p.as_str() == "/"),
                "invalid configuration: federation.destination_overrides.{server} must be \
                 https://host[:port], got {url:?}"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_room_version_may_be_a_number_or_a_string() {
        for text in ["12", "\"12\""] {
            let toml = format!("server_name = \"x.test\"\n[rooms]\ndefault_version = {text}\n");
            let config: Config = Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(&toml))
                .extract()
                .expect("valid config");
            assert_eq!(config.rooms.default_version, RoomVersionId::V12);
        }
    }

    #[test]
    fn printed_configuration_hides_secrets() {
        let mut config = Config::default();
        config.database.url = "postgres://hearth:hunter2@db/hearth".to_owned();
        config.registration.shared_secret = "s3cret".to_owned();
        let printed = serde_json::to_string(&config.redacted()).expect("serialises");
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret"), "{printed}");
    }
}
