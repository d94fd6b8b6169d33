//! Federation in tests: a test CA made once per test process, Hearth servers whose federation TLS
//! listeners (on loopback ports) carry certificates from it, and [`Cluster`] to start several
//! such servers that know how to reach each other; [`alice_and_bob_across_servers`] for two
//! servers' users in one room.
//!
//! Servers are started first, on port 0, and told about each other afterwards
//! ([`TestServer::add_federation_peer`], which sets a destination override at runtime and keeps it
//! in the configuration for restarts), so no port is picked before it is bound.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use hearth::Config;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use serde_json::json;

use crate::{Backend, Client, TestServer, client::enc};

/// The test process's certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// The CA, made on first use.
pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Hearth test CA");
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signing the CA");
        let dir = tempfile::tempdir().expect("a directory for the CA");
        let pem_file = dir.path().join("ca.pem");
        std::fs::write(&pem_file, issuer.pem()).expect("writing the CA certificate");
        TestCa { issuer, pem_file, _dir: dir }
    })
}

impl TestCa {
    /// The CA certificate, PEM.
    pub fn pem_file(&self) -> &Path {
        &self.pem_file
    }

    /// Issues a certificate for `name` and 127.0.0.1, written to `dir` as `{name}.crt` and
    /// `{name}.key`.
    pub fn issue(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("certificate parameters");
        params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("certificate key");
        let cert = params.signed_by(&key, &self.issuer).expect("signing the certificate");
        let (cert_file, key_file) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&cert_file, cert.pem()).expect("writing the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("writing the key");
        (cert_file, key_file)
    }

    /// An HTTP client that trusts the CA.
    pub fn http_client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.pem_file).expect("reading the CA certificate");
        let ca = reqwest::Certificate::from_pem(&pem).expect("the CA certificate");
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(ca)
            .build()
            .expect("an HTTP client trusting the test CA")
    }
}

/// Turns federation on in a test server's configuration: a TLS listener on a free loopback port
/// with a certificate from the test CA, the CA trusted for outbound requests, loopback allowed.
pub fn enable_federation(config: &mut Config) {
    let ca = test_ca();
    let (cert, key) = ca.issue(&config.storage.data_dir, config.server_name.as_str());
    let federation = &mut config.federation;
    federation.enabled = true;
    federation.listen = "127.0.0.1:0".parse().expect("valid address");
    federation.tls_cert = Some(cert);
    federation.tls_key = Some(key);
    federation.extra_ca_file = Some(ca.pem_file().to_owned());
    federation.allow_private_addresses = true;
}

/// Several Hearth servers that federate with each other.
pub struct Cluster;

impl Cluster {
    /// Starts `n` servers on `backend` (each with its own database), federation on, each
    /// knowing where the others listen.
    pub async fn start(backend: Backend, n: usize) -> Vec<TestServer> {
        Self::start_with(backend, n, |_, _| {}).await
    }

    /// Like [`Cluster::start`], after `tweak(index, config)` adjusted each server's
    /// configuration.
    pub async fn start_with(
        backend: Backend,
        n: usize,
        tweak: impl Fn(usize, &mut Config),
    ) -> Vec<TestServer> {
        let mut servers = Vec::with_capacity(n);
        for index in 0..n {
            let server = TestServer::start_with(backend.clone(), |config| {
                enable_federation(config);
                tweak(index, config);
            })
            .await;
            servers.push(server);
        }
        let peers: Vec<(String, String)> =
            servers.iter().map(|s| (s.server_name.clone(), s.federation_url())).collect();
        for server in &mut servers {
            for (name, url) in &peers {
                if *name != server.server_name {
                    server.add_federation_peer(name, url);
                }
            }
        }
        servers
    }
}

/// The password of the users [`alice_and_bob_across_servers`] registers.
pub const PASSWORD: &str = "password1234";

/// Alice on the first of two servers (each adjusted by `tweak(index, config)`) creates a public
/// room; Bob on the second joins it: `(servers, alice, bob, room ID)`.
pub async fn alice_and_bob_across_servers(
    backend: Backend,
    tweak: impl Fn(usize, &mut Config),
) -> (Vec<TestServer>, Client, Client, String) {
    let servers = Cluster::start_with(backend, 2, tweak).await;
    let alice = servers[0].client().register("alice", PASSWORD).await;
    let bob = servers[1].client().register("bob", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let path =
        format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room_id), enc(&servers[0].server_name));
    bob.post(&path, json!({})).await.expect_status(200);
    (servers, alice, bob, room_id)
}
