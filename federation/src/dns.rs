//! The network side of server discovery: DNS through hickory's caching resolver, the
//! `.well-known/matrix/server` fetch with its cache, and the DNS hook of the outbound HTTP client,
//! which follows SRV targets and refuses private addresses unless they are allowed.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_resolver::{TokioResolver, name_server::TokioConnectionProvider};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;

use crate::resolver::{self, Lookup};

/// How long a well-known answer is kept without cache headers (spec: 24 hours).
const WELL_KNOWN_DEFAULT: Duration = Duration::from_secs(24 * 3600);
/// The longest a well-known answer is kept, whatever its headers say (spec: 48 hours).
const WELL_KNOWN_MAX: Duration = Duration::from_secs(48 * 3600);
/// How long a failed well-known fetch is remembered (spec: up to an hour).
const WELL_KNOWN_ERROR: Duration = Duration::from_secs(3600);
/// The largest well-known body read.
const WELL_KNOWN_MAX_BYTES: usize = 64 * 1024;

/// DNS for federation: hickory's resolver (which caches by TTL), the SRV targets discovery chose,
/// and the private-address policy.
#[derive(Clone)]
pub struct Dns(Arc<DnsInner>);

struct DnsInner {
    resolver: TokioResolver,
    allow_private: bool,
    /// URL host → SRV target whose addresses to connect to instead.
    srv_targets: Mutex<HashMap<String, String>>,
}

impl Dns {
    /// The system's resolver configuration (or public defaults when it cannot be read).
    pub fn new(allow_private: bool) -> Dns {
        let builder = TokioResolver::builder_tokio().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the system DNS configuration; using defaults");
            TokioResolver::builder_with_config(Default::default(), TokioConnectionProvider::default())
        });
        Dns(Arc::new(DnsInner { resolver: builder.build(), allow_private, srv_targets: Mutex::default() }))
    }

    /// Whether outbound federation may connect to `ip`.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.0.allow_private || !resolver::is_private(ip)
    }

    /// Connect to `target`'s addresses when a URL names `host`.
    pub fn remember_srv_target(&self, host: &str, target: &str) {
        if let Ok(mut targets) = self.0.srv_targets.lock() {
            targets.insert(host.to_ascii_lowercase(), target.to_owned());
        }
    }

    /// The best target of an SRV record: lowest priority, then highest weight.
    async fn srv(&self, name: &str) -> Option<(String, u16)> {
        let records = self.0.resolver.srv_lookup(name).await.ok()?;
        records
            .iter()
            .min_by_key(|srv| (srv.priority(), std::cmp::Reverse(srv.weight())))
            .map(|srv| (srv.target().to_utf8(), srv.port()))
    }

    async fn addresses(&self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let target = self.0.srv_targets.lock().ok().and_then(|t| t.get(&host.to_ascii_lowercase()).cloned());
        let lookup_name = target.as_deref().unwrap_or(host);
        let ips = self
            .0
            .resolver
            .lookup_ip(lookup_name)
            .await
            .map_err(|e| format!("resolving {lookup_name}: {e}"))?;
        let allowed: Vec<SocketAddr> =
            ips.iter().filter(|ip| self.allowed(*ip)).map(|ip| SocketAddr::new(ip, 0)).collect();
        if allowed.is_empty() {
            return Err(format!("{lookup_name} has no public address (private addresses are not allowed)"));
        }
        Ok(allowed)
    }
}

impl Resolve for Dns {
    fn resolve(&self, name: Name) -> Resolving {
        let dns = self.clone();
        Box::pin(async move {
            let addresses = dns.addresses(name.as_str()).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The network [`Lookup`]: DNS SRV records and well-known fetches (cached).
pub struct NetLookup {
    dns: Dns,
    /// Fetches well-known files: no X-Matrix, redirects followed, the same TLS and DNS rules.
    http: reqwest::Client,
    well_known: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl NetLookup {
    /// Discovery over `dns`, fetching well-known files with `http`.
    pub fn new(dns: Dns, http: reqwest::Client) -> Self {
        NetLookup { dns, http, well_known: Mutex::default() }
    }

    async fn fetch_well_known(&self, hostname: &str) -> (Option<String>, Duration) {
        #[derive(Deserialize)]
        struct WellKnown {
            #[serde(rename = "m.server")]
            server: String,
        }
        let url = format!("https://{hostname}/.well-known/matrix/server");
        let response = match self.http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::debug!(%url, status = %response.status(), "no well-known delegation");
                return (None, WELL_KNOWN_ERROR);
            }
            Err(e) => {
                tracing::debug!(%url, error = %e, "no well-known delegation");
                return (None, WELL_KNOWN_ERROR);
            }
        };
        let lifetime = cache_lifetime(response.headers());
        let body = match response.bytes().await {
            Ok(body) if body.len() <= WELL_KNOWN_MAX_BYTES => body,
            _ => return (None, WELL_KNOWN_ERROR),
        };
        match serde_json::from_slice::<WellKnown>(&body) {
            Ok(well_known) => (Some(well_known.server), lifetime),
            Err(_) => (None, WELL_KNOWN_ERROR),
        }
    }
}

impl Lookup for NetLookup {
    async fn well_known(&self, hostname: &str) -> Option<String> {
        let now = Instant::now();
        if let Some((answer, expires)) = self.well_known.lock().ok().and_then(|c| c.get(hostname).cloned())
            && expires > now
        {
            return answer;
        }
        let (answer, lifetime) = self.fetch_well_known(hostname).await;
        if let Ok(mut cache) = self.well_known.lock() {
            cache.retain(|_, (_, expires)| *expires > now);
            cache.insert(hostname.to_owned(), (answer.clone(), now + lifetime));
        }
        answer
    }

    async fn srv(&self, name: &str) -> Option<(String, u16)> {
        self.dns.srv(name).await
    }
}

/// How long a successful well-known answer may be cached: `Cache-Control: max-age` (`no-store`
/// and `no-cache` mean not at all), else `Expires`, else 24 hours; at most 48 hours.
pub fn cache_lifetime(headers: &reqwest::header::HeaderMap) -> Duration {
    let cache_control = headers.get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok());
    let from_cache_control = cache_control.and_then(|value| {
        value.split(',').map(str::trim).find_map(|directive| {
            if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
                Some(Duration::ZERO)
            } else {
                let (name, seconds) = directive.split_once('=')?;
                name.trim().eq_ignore_ascii_case("max-age").then_some(())?;
                seconds.trim().trim_matches('"').parse().ok().map(Duration::from_secs)
            }
        })
    });
    let from_expires = || {
        let expires = headers.get(reqwest::header::EXPIRES)?.to_str().ok()?;
        let at = httpdate::parse_http_date(expires).ok()?;
        Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
    };
    from_cache_control.or_else(from_expires).unwrap_or(WELL_KNOWN_DEFAULT).min(WELL_KNOWN_MAX)
}

#[cfg(test)]
mod tests {
    use reqwest::header::{CACHE_CONTROL, EXPIRES, HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(reqwest::header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn well_known_answers_are_cached_as_their_headers_say_within_bounds() {
        assert_eq!(cache_lifetime(&headers(&[])), WELL_KNOWN_DEFAULT);
        assert_eq!(
            cache_lifetime(&headers(&[(CACHE_CONTROL, "public, max-age=600")])),
            Duration::from_secs(600)
        );
        assert_eq!(cache_lifetime(&headers(&[(CACHE_CONTROL, "max-age=9999999")])), WELL_KNOWN_MAX);
        assert_eq!(cache_lifetime(&headers(&[(CACHE_CONTROL, "no-store")])), Duration::ZERO);
        assert_eq!(cache_lifetime(&headers(&[(EXPIRES, "Thu, 01 Jan 1970 00:00:00 GMT")])), Duration::ZERO);
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(7200));
        let mut map = HeaderMap::new();
        map.insert(EXPIRES, HeaderValue::from_str(&later).expect("header"));
        let lifetime = cache_lifetime(&map);
        assert!(
            lifetime > Duration::from_secs(7000) && lifetime <= Duration::from_secs(7200),
            "{lifetime:?}"
        );
    }
}
