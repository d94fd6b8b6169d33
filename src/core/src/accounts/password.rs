//! Password hashing with argon2id (PHC strings), run on the blocking pool: each hash costs tens
//! of milliseconds of CPU, which must not stall the async runtime.

use anyhow::Context;
use argon2::{
    Argon2, PasswordHasher, PasswordVerifier,
    password_hash::{PasswordHash, SaltString, rand_core::OsRng},
};

use crate::{Error, Result};

/// Hashes a password into a PHC string.
pub async fn hash(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .context("password hashing task")?
    .map_err(Error::Internal)
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub async fn verify(hash: &str, password: &str) -> Result<bool> {
    let (hash, password) = (hash.to_owned(), password.to_owned());
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .context("password verification task")?;
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let h = hash("correct horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse").await.expect("verify"));
        assert!(!verify(&h, "wrong horse").await.expect("verify"));
        assert!(!verify("not a hash", "correct horse").await.expect("verify"));
    }
}
