//! TLS material: the federation listener's certificate (from files, or self-signed for
//! development) and the trust roots of outbound requests.

use std::{path::Path, sync::Arc};

use anyhow::Context;
use hearth_core::config::FederationConfig;
use ruma::ServerName;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// The listener's TLS configuration: the configured certificate and key, or a self-signed
/// certificate for `server_name` when `generate_self_signed` is on and none is configured.
pub fn server_config(
    config: &FederationConfig,
    server_name: &ServerName,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (certs, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (load_certs(cert)?, load_key(key)?),
        _ if config.generate_self_signed => self_signed(server_name)?,
        _ => anyhow::bail!("federation.tls_cert and federation.tls_key are not set"),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the federation certificate and key do not fit together")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// The certificates of a PEM file.
pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading the private key {}", path.display()))
}

fn self_signed(
    server_name: &ServerName,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    tracing::warn!(%server_name, "federation listener uses a self-signed certificate: other servers will not trust it");
    let certified = rcgen::generate_simple_self_signed(vec![server_name.host().to_owned()])
        .context("generating a self-signed certificate")?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("self-signed key: {e}"))?;
    Ok((vec![certified.cert.der().clone()], key))
}
