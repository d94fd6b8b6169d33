//! The server's ed25519 signing key: generated on first start and kept in the data directory,
//! because remote servers pin it and every event we ever signed must stay verifiable.

use std::path::Path;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use rand::{Rng, distributions::Alphanumeric};
use ruma::signatures::Ed25519KeyPair;

const FILE_NAME: &str = "signing.key";

/// Reads `<data_dir>/signing.key` (`ed25519 <version> <base64 PKCS#8>`), creating it if absent.
pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<Ed25519KeyPair> {
    let path = data_dir.join(FILE_NAME);
    if !path.exists() {
        let version: String = rand::thread_rng().sample_iter(&Alphanumeric).take(6).map(char::from).collect();
        let der = Ed25519KeyPair::generate();
        let line = format!("ed25519 a_{version} {}\n", STANDARD_NO_PAD.encode(der.as_slice()));
        write_private(&path, &line).with_context(|| format!("writing signing key {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated a new signing key");
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading signing key {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing signing key {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<Ed25519KeyPair> {
    let mut parts = text.split_whitespace();
    let (Some("ed25519"), Some(version), Some(der), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!("expected one line: ed25519 <version> <base64 key>");
    };
    let der = STANDARD_NO_PAD.decode(der.trim_end_matches('=')).context("key is not base64")?;
    Ok(Ed25519KeyPair::from_der(&der, version.to_owned())?)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_generate(dir.path()).expect("first load");
        let second = load_or_generate(dir.path()).expect("second load");
        assert_eq!(first.public_key(), second.public_key());
        assert_eq!(first.version(), second.version());
        assert!(first.version().starts_with("a_"));
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), "garbage").expect("write");
        assert!(load_or_generate(dir.path()).is_err());
    }
}
