//! Shared-secret registration, compatible with Synapse's `/_synapse/admin/v1/register` so that
//! operator tools and test suites can create (admin) accounts: a one-shot nonce, then an
//! HMAC-SHA1 over `nonce NUL username NUL password NUL admin|notadmin`, keyed with the secret.

use hmac::{Hmac, Mac};
use rand::{Rng, distributions::Alphanumeric};
use sha1::Sha1;

use super::registration::{self, NewAccount, Registered};
use crate::{Error, Homeserver, Result, storage::nonces, time::now_ms};

/// How long a nonce may be used after it was issued.
const NONCE_LIFETIME_MS: i64 = 60_000;

/// A shared-secret registration request.
#[derive(Clone, Debug)]
pub struct AdminRegistration {
    /// Nonce from [`new_nonce`].
    pub nonce: String,
    /// Localpart.
    pub username: String,
    /// Password.
    pub password: String,
    /// Display name.
    pub displayname: Option<String>,
    /// Whether the new user is an admin.
    pub admin: bool,
    /// Hex HMAC-SHA1 of the request, keyed with the shared secret.
    pub mac: String,
}

/// Issues a nonce; fails when no shared secret is configured.
pub async fn new_nonce(hs: &Homeserver) -> Result<String> {
    secret(hs)?;
    let nonce: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    nonces::insert(hs.db().pool(), &nonce, now_ms()).await?;
    Ok(nonce)
}

/// Verifies the nonce and MAC, then registers the account.
pub async fn register(hs: &Homeserver, request: AdminRegistration) -> Result<Registered> {
    let secret = secret(hs)?;
    if !nonces::take(hs.db().pool(), &request.nonce, now_ms() - NONCE_LIFETIME_MS).await? {
        return Err(Error::bad_request("Unrecognised or expired nonce"));
    }
    let expected = hex::decode(&request.mac).map_err(|_| Error::forbidden("HMAC incorrect"))?;
    mac(secret, &request).verify_slice(&expected).map_err(|_| Error::forbidden("HMAC incorrect"))?;
    registration::register(
        hs,
        NewAccount {
            username: Some(request.username),
            password: Some(request.password),
            displayname: request.displayname,
            is_admin: request.admin,
            ..NewAccount::default()
        },
    )
    .await
}

fn secret(hs: &Homeserver) -> Result<&str> {
    let secret = hs.config().registration.shared_secret.as_str();
    if secret.is_empty() {
        Err(Error::bad_request("Shared secret registration is not enabled"))
    } else {
        Ok(secret)
    }
}

fn mac(secret: &str, r: &AdminRegistration) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(r.nonce.as_bytes());
    mac.update(b"\0");
    mac.update(r.username.as_bytes());
    mac.update(b"\0");
    mac.update(r.password.as_bytes());
    mac.update(b"\0");
    mac.update(if r.admin { b"admin" } else { b"notadmin" });
    mac
}
