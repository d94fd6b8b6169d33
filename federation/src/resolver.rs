//! Server discovery (spec: Server-Server API › Resolving server names): from a server name to the
//! URL to connect to, the name its certificate must carry and the `Host` header. The steps are
//! pure logic over a [`Lookup`] (well-known and SRV), so tests run them against a fake.

use std::{future::Future, net::IpAddr};

use ruma::{OwnedServerName, ServerName};

/// The default federation port.
pub const DEFAULT_PORT: u16 = 8448;

/// Where requests for a server go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// `https://{tls_name}:{port}`: the host part is what the certificate must be valid for
    /// (and the SNI).
    pub base_url: String,
    /// The `Host` header to send.
    pub host_header: String,
    /// When an SRV record named the target, the host name whose addresses to connect to instead
    /// of the URL's host: `(url host, SRV target)`.
    pub srv_target: Option<(String, String)>,
}

impl Destination {
    fn direct(host: &str, port: u16, host_header: impl Into<String>) -> Self {
        Destination {
            base_url: format!("https://{host}:{port}"),
            host_header: host_header.into(),
            srv_target: None,
        }
    }

    /// The IP address the URL names, if its host is an IP literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        let authority = self.base_url.strip_prefix("https://")?;
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next()?,
            None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
        };
        host.parse().ok()
    }

    /// The destination named by a configured override URL (`https://host[:port]`): that host
    /// and port, nothing looked up.
    pub fn overridden(url: &str) -> Self {
        let base_url = url.trim_end_matches('/').to_owned();
        let host_header = base_url.strip_prefix("https://").unwrap_or(&base_url).to_owned();
        Destination { base_url, host_header, srv_target: None }
    }
}

/// The network look-ups discovery needs.
pub trait Lookup: Sync {
    /// The `m.server` of `https://{hostname}/.well-known/matrix/server`, or `None` when there is
    /// no valid answer (errors, bad JSON, missing property, non-200).
    fn well_known(&self, hostname: &str) -> impl Future<Output = Option<String>> + Send;

    /// The preferred target (`(host, port)`) of the SRV record `name`, if there is one.
    fn srv(&self, name: &str) -> impl Future<Output = Option<(String, u16)>> + Send;
}

/// Resolves `server_name` following the spec's steps.
pub async fn resolve(server_name: &ServerName, lookup: &impl Lookup) -> Destination {
    let host = server_name.host();
    // 1. An IP literal, with the given port or 8448; `Host` is the server name.
    if server_name.is_ip_literal() {
        return Destination::direct(host, server_name.port().unwrap_or(DEFAULT_PORT), server_name.as_str());
    }
    // 2. A hostname with an explicit port.
    if let Some(port) = server_name.port() {
        return Destination::direct(host, port, server_name.as_str());
    }
    // 3. Delegation through `.well-known/matrix/server`; an invalid `m.server` counts as none.
    if let Some(delegated) = lookup.well_known(host).await
        && let Ok(delegated) = OwnedServerName::try_from(delegated)
    {
        return resolve_delegated(&delegated, lookup).await;
    }
    // 4.–6. SRV records of the server name itself, then its A/AAAA records on 8448.
    match srv(host, lookup).await {
        Some((target, port)) => via_srv(host, target, port),
        None => Destination::direct(host, DEFAULT_PORT, host),
    }
}

/// Step 3's sub-steps, for the delegated server name.
async fn resolve_delegated(delegated: &ServerName, lookup: &impl Lookup) -> Destination {
    let host = delegated.host();
    match delegated.port() {
        // 3.1 and 3.2: an IP literal or an explicit port; `Host` is the delegated name as given.
        Some(port) => Destination::direct(host, port, delegated.as_str()),
        None if delegated.is_ip_literal() => Destination::direct(host, DEFAULT_PORT, delegated.as_str()),
        // 3.3 to 3.5: SRV records of the delegated host, else 8448.
        None => match srv(host, lookup).await {
            Some((target, port)) => via_srv(host, target, port),
            None => Destination::direct(host, DEFAULT_PORT, host),
        },
    }
}

/// `_matrix-fed._tcp.{host}`, then the deprecated `_matrix._tcp.{host}`.
async fn srv(host: &str, lookup: &impl Lookup) -> Option<(String, u16)> {
    match lookup.srv(&format!("_matrix-fed._tcp.{host}")).await {
        Some(found) => Some(found),
        None => lookup.srv(&format!("_matrix._tcp.{host}")).await,
    }
}

/// Connect to the SRV target's addresses, but present `host` (certificate, SNI, `Host`).
fn via_srv(host: &str, target: String, port: u16) -> Destination {
    let target = target.trim_end_matches('.').to_owned();
    if target.eq_ignore_ascii_case(host) {
        return Destination::direct(host, port, host);
    }
    Destination { srv_target: Some((host.to_owned(), target)), ..Destination::direct(host, port, host) }
}

/// Whether outbound federation must not connect to `ip` (unless private addresses are allowed):
/// loopback, private, link-local, unspecified, shared, documentation and other special ranges.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Canned answers; anything not listed has no record.
    #[derive(Default)]
    struct Fake {
        well_known: HashMap<&'static str, &'static str>,
        srv: HashMap<&'static str, (&'static str, u16)>,
    }

    impl Lookup for Fake {
        async fn well_known(&self, hostname: &str) -> Option<String> {
            self.well_known.get(hostname).map(|s| (*s).to_owned())
        }

        async fn srv(&self, name: &str) -> Option<(String, u16)> {
            self.srv.get(name).map(|(host, port)| ((*host).to_owned(), *port))
        }
    }

    async fn resolved(name: &str, fake: &Fake) -> Destination {
        resolve(&OwnedServerName::try_from(name).expect("server name"), fake).await
    }

    fn direct(base_url: &str, host_header: &str) -> Destination {
        Destination { base_url: base_url.to_owned(), host_header: host_header.to_owned(), srv_target: None }
    }

    #[tokio::test]
    async fn ip_literals_are_used_as_they_are() {
        let fake = Fake { well_known: HashMap::from([("1.2.3.4", "elsewhere.test")]), ..Fake::default() };
        assert_eq!(resolved("1.2.3.4", &fake).await, direct("https://1.2.3.4:8448", "1.2.3.4"));
        assert_eq!(resolved("1.2.3.4:99", &fake).await, direct("https://1.2.3.4:99", "1.2.3.4:99"));
        assert_eq!(resolved("[::1]:99", &fake).await, direct("https://[::1]:99", "[::1]:99"));
    }

    #[tokio::test]
    async fn an_explicit_port_skips_well_known_and_srv() {
        let fake = Fake {
            well_known: HashMap::from([("a.test", "b.test")]),
            srv: HashMap::from([("_matrix-fed._tcp.a.test", ("c.test", 1))]),
        };
        assert_eq!(resolved("a.test:8000", &fake).await, direct("https://a.test:8000", "a.test:8000"));
    }

    #[tokio::test]
    async fn well_known_delegation_with_a_port_or_an_ip() {
        let fake = Fake {
            well_known: HashMap::from([("a.test", "b.test:443"), ("ip.test", "5.6.7.8")]),
            srv: HashMap::from([("_matrix-fed._tcp.b.test", ("c.test", 1))]),
        };
        assert_eq!(resolved("a.test", &fake).await, direct("https://b.test:443", "b.test:443"));
        assert_eq!(resolved("ip.test", &fake).await, direct("https://5.6.7.8:8448", "5.6.7.8"));
    }

    #[tokio::test]
    async fn well_known_delegation_then_srv_then_8448() {
        let fake = Fake {
            well_known: HashMap::from([
                ("a.test", "b.test"),
                ("x.test", "y.test"),
                ("old.test", "legacy.test"),
            ]),
            srv: HashMap::from([
                ("_matrix-fed._tcp.b.test", ("target.test.", 7000)),
                ("_matrix._tcp.legacy.test", ("t2.test", 7001)),
            ]),
        };
        let via_srv = resolved("a.test", &fake).await;
        assert_eq!(via_srv.base_url, "https://b.test:7000");
        assert_eq!(via_srv.host_header, "b.test");
        assert_eq!(via_srv.srv_target, Some(("b.test".to_owned(), "target.test".to_owned())));
        let legacy = resolved("old.test", &fake).await;
        assert_eq!(legacy.base_url, "https://legacy.test:7001");
        assert_eq!(resolved("x.test", &fake).await, direct("https://y.test:8448", "y.test"));
    }

    #[tokio::test]
    async fn an_invalid_delegation_falls_through_to_srv() {
        let fake = Fake {
            well_known: HashMap::from([("a.test", "not a server name:port")]),
            srv: HashMap::from([("_matrix-fed._tcp.a.test", ("a.test", 9000))]),
        };
        assert_eq!(resolved("a.test", &fake).await, direct("https://a.test:9000", "a.test"));
    }

    #[tokio::test]
    async fn without_delegation_srv_records_of_the_name_then_8448() {
        let fake = Fake {
            srv: HashMap::from([("_matrix._tcp.legacy.test", ("box.test", 1234))]),
            ..Fake::default()
        };
        let legacy = resolved("legacy.test", &fake).await;
        assert_eq!(legacy.base_url, "https://legacy.test:1234");
        assert_eq!(legacy.host_header, "legacy.test");
        assert_eq!(legacy.srv_target, Some(("legacy.test".to_owned(), "box.test".to_owned())));
        assert_eq!(resolved("plain.test", &fake).await, direct("https://plain.test:8448", "plain.test"));
    }

    #[test]
    fn the_ip_literal_of_a_destination_is_found_for_the_address_check() {
        assert_eq!(direct("https://10.0.0.1:8448", "x").ip_literal(), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(direct("https://[fe80::1]:99", "x").ip_literal(), Some("fe80::1".parse().expect("ip")));
        assert_eq!(direct("https://b.test:8448", "x").ip_literal(), None);
    }

    #[test]
    fn private_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.0.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(private.parse().expect("ip")), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_private(public.parse().expect("ip")), "{public}");
        }
    }
}
