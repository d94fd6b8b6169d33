//! The outbound federation client: resolves a destination, builds the HTTP request from a ruma
//! federation request type, signs it with X-Matrix, sends it over TLS and parses the answer.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context;
use hearth_core::{Homeserver, config::FederationConfig};
use ruma::{
    OwnedServerName, ServerName,
    api::federation::authentication::{ServerSignatures, XMatrixSigningInput},
    api::{
        EndpointError, IncomingResponseExt, Metadata, OutgoingRequest, OutgoingRequestExt,
        auth_scheme::{AuthScheme, NoAuthentication},
        error::{ErrorBody, ErrorKind},
        path_builder::SinglePath,
    },
    signatures::Ed25519KeyPair,
};

use crate::{
    FedError,
    dns::{Dns, NetLookup},
    resolver::{self, Destination},
};

/// How long connecting to another server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The smallest limit on an answer's size (a `send_join` answer of a large room is big).
const MIN_RESPONSE_LIMIT: usize = 256 << 20;
/// How long an answer may stall between two reads.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How an outbound request authenticates: X-Matrix for most endpoints, nothing for the key API.
pub trait OutboundAuth: AuthScheme {
    /// The signing input for a request from `origin` to `destination`.
    fn input<'a>(origin: &ServerName, destination: &ServerName, key: &'a Ed25519KeyPair) -> Self::Input<'a>;
}

impl OutboundAuth for ServerSignatures {
    fn input<'a>(
        origin: &ServerName,
        destination: &ServerName,
        key: &'a Ed25519KeyPair,
    ) -> XMatrixSigningInput<'a> {
        XMatrixSigningInput::new(origin.to_owned(), destination.to_owned(), key)
    }
}

impl OutboundAuth for NoAuthentication {
    fn input(_: &ServerName, _: &ServerName, _: &Ed25519KeyPair) {}
}

/// Sends requests to other servers. Cheap to clone.
#[derive(Clone)]
pub struct FedClient(Arc<Inner>);

struct Inner {
    hs: Homeserver,
    enabled: bool,
    http: reqwest::Client,
    dns: Dns,
    lookup: NetLookup,
    overrides: RwLock<HashMap<OwnedServerName, Destination>>,
}

impl FedClient {
    /// A client configured from `hs`'s `[federation]` section.
    pub fn new(hs: &Homeserver) -> anyhow::Result<FedClient> {
        let config = &hs.config().federation;
        let dns = Dns::new(config.allow_private_addresses);
        let http = http_client(config, &dns, reqwest::redirect::Policy::none())?;
        // Well-known files may redirect (spec), a few times, never to a refused address.
        let redirect_dns = dns.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let refused = attempt
                .url()
                .host_str()
                .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok())
                .is_some_and(|ip| !redirect_dns.allowed(ip));
            if attempt.previous().len() >= 5 || refused { attempt.stop() } else { attempt.follow() }
        });
        let lookup = NetLookup::new(dns.clone(), http_client(config, &dns, redirects)?);
        let mut overrides = HashMap::new();
        for (server, url) in &config.destination_overrides {
            let server = OwnedServerName::try_from(server.as_str()).context("destination_overrides")?;
            tracing::info!(%server, %url, "federation destination overridden");
            overrides.insert(server, Destination::overridden(url));
        }
        let overrides = RwLock::new(overrides);
        Ok(FedClient(Arc::new(Inner {
            hs: hs.clone(),
            enabled: config.enabled,
            http,
            dns,
            lookup,
            overrides,
        })))
    }

    /// Sends requests for `server` to `url` (`https://host[:port]`) from now on, as a
    /// `destination_overrides` entry would (tests start servers before they know their peers'
    /// ports).
    pub fn add_destination_override(&self, server: &ServerName, url: &str) {
        tracing::info!(%server, %url, "federation destination overridden");
        if let Ok(mut overrides) = self.0.overrides.write() {
            overrides.insert(server.to_owned(), Destination::overridden(url));
        }
    }

    /// Where requests for `server` go: a configured override, else server discovery. Refuses
    /// private IP literals unless they are allowed.
    pub async fn destination(&self, server: &ServerName) -> Result<Destination, FedError> {
        if let Some(overridden) = self.0.overrides.read().ok().and_then(|o| o.get(server).cloned()) {
            return Ok(overridden);
        }
        let destination = resolver::resolve(server, &self.0.lookup).await;
        // The name or its delegation may be an IP literal, which no DNS look-up filters.
        if destination.ip_literal().is_some_and(|ip| !self.0.dns.allowed(ip)) {
            return Err(FedError::Invalid {
                destination: server.to_owned(),
                message: format!("{} is a private address, which is not allowed", destination.base_url),
            });
        }
        if let Some((host, target)) = &destination.srv_target {
            self.0.dns.remember_srv_target(host, target);
        }
        Ok(destination)
    }

    /// Sends `request` to `destination`, signed with our key when the endpoint asks for X-Matrix,
    /// and parses the answer.
    pub async fn send<R>(&self, destination: &ServerName, request: R) -> Result<R::IncomingResponse, FedError>
    where
        R: OutgoingRequest + Metadata<PathBuilder = SinglePath>,
        R::Authentication: OutboundAuth,
    {
        let invalid = |message: String| FedError::Invalid { destination: destination.to_owned(), message };
        let transport = |e: reqwest::Error| FedError::Transport {
            destination: destination.to_owned(),
            message: format!("{e:#}"),
        };
        if !self.0.enabled {
            return Err(FedError::Disabled { destination: destination.to_owned() });
        }
        if destination == self.0.hs.server_name() {
            return Err(invalid("a server does not send federation requests to itself".to_owned()));
        }
        let target = self.destination(destination).await?;
        let hs = &self.0.hs;
        let auth = R::Authentication::input(hs.server_name(), destination, hs.signing_key());
        let mut http_request = request
            .try_into_http_request::<Vec<u8>>(&target.base_url, auth, ())
            .map_err(|e| invalid(format!("building the request: {e}")))?;
        let host =
            target.host_header.parse().map_err(|_| invalid(format!("bad Host {:?}", target.host_header)))?;
        http_request.headers_mut().insert(http::header::HOST, host);
        let http_request = reqwest::Request::try_from(http_request)
            .map_err(|e| invalid(format!("building the request: {e}")))?;
        let response = self.0.http.execute(http_request).await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response, self.max_response_bytes()).await.map_err(|e| match e {
            Limited::Transport(e) => transport(e),
            Limited::TooLarge(limit) => invalid(format!("the answer is larger than {limit} bytes")),
        })?;
        let mut answer = http::Response::new(&body[..]);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        if status.as_u16() >= 400 {
            let error = ruma::api::error::Error::from_http_response(answer);
            let (kind, message) = match error.body {
                ErrorBody::Standard(standard) => (standard.kind, standard.message),
                ErrorBody::Json(json) => (ErrorKind::Unknown, json.to_string()),
                ErrorBody::NotJson { .. } => {
                    (ErrorKind::Unknown, String::from_utf8_lossy(&body).into_owned())
                }
            };
            return Err(FedError::Remote { destination: destination.to_owned(), status, kind, message });
        }
        R::IncomingResponse::try_from_http_response(answer)
            .map_err(|e| invalid(format!("unexpected answer: {e}")))
    }

    /// The largest answer read: media up to the upload limit, and room for large JSON answers
    /// (`send_join` of a big room).
    fn max_response_bytes(&self) -> usize {
        let media = usize::try_from(self.0.hs.config().limits.max_upload_bytes).unwrap_or(usize::MAX);
        media.saturating_add(1 << 20).max(MIN_RESPONSE_LIMIT)
    }
}

/// Why an answer could not be read.
enum Limited {
    Transport(reqwest::Error),
    TooLarge(usize),
}

/// Reads an answer's body, giving up past `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Limited> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Limited::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Limited::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An HTTP client for federation: rustls with the built-in roots plus `extra_ca_file`, DNS
/// through `dns`, the given redirect policy.
fn http_client(
    config: &FederationConfig,
    dns: &Dns,
    redirects: reqwest::redirect::Policy,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(true)
        .dns_resolver(Arc::new(dns.clone()))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(redirects)
        .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.extra_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading federation.extra_ca_file {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).context("parsing federation.extra_ca_file")? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if !config.verify_tls {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().context("building the federation HTTP client")
}
