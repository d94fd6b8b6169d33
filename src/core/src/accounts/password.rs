//! Password hashing with argon2id (PHC strings), run on the blocking pool: each hash costs tens
//! of milliseconds of CPU and 19 MiB of memory, which must not stall the async runtime. At most
//! one hash per core runs at a time ([`PasswordHashers`]): more would only queue for the CPU,
//! and each would hold its memory meanwhile (a burst of logins would balloon the heap).

use anyhow::Context;
use argon2::{
    Argon2, PasswordHasher, PasswordVerifier,
    password_hash::{PasswordHash, SaltString, rand_core::OsRng},
};

use crate::{Error, Homeserver, Result};

/// Limits concurrent password hashing to the number of cores.
pub struct PasswordHashers(tokio::sync::Semaphore);

impl Default for PasswordHashers {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PasswordHashers(tokio::sync::Semaphore::new(cores))
    }
}

async fn permit(hs: &Homeserver) -> Result<tokio::sync::SemaphorePermit<'_>> {
    hs.password_hashers().0.acquire().await.map_err(|e| Error::Internal(e.into()))
}

/// Hashes a password into a PHC string.
pub async fn hash(hs: &Homeserver, password: &str) -> Result<String> {
    let _permit = permit(hs).await?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .context("password hashing task")?
        .map_err(Error::Internal)
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub async fn verify(hs: &Homeserver, hash: &str, password: &str) -> Result<bool> {
    let _permit = permit(hs).await?;
    let (hash, password) = (hash.to_owned(), password.to_owned());
    let matches = tokio::task::spawn_blocking(move || verify_now(&hash, &password))
        .await
        .context("password verification task")?;
    Ok(matches)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

fn verify_now(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let h = hash_now("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_now(&h, "correct horse"));
        assert!(!verify_now(&h, "wrong horse"));
        assert!(!verify_now("not a hash", "correct horse"));
    }
}
