//! Uploaded cross-signing signatures (spec: Client-Server API › End-to-End Encryption ›
//! Cross-signing; `POST /keys/signatures/upload`). A user may sign:
//!
//! - their own devices, with their self-signing key;
//! - their own master key, with one of their devices;
//! - other local users' master keys, with their user-signing key (only the signer sees these).
//!
//! Each signed object must be the stored key but for its signatures; each new signature by the
//! uploader is verified before it is stored. What fails is reported per key in `failures`
//! (`M_INVALID_SIGNATURE` for a bad or missing signature); the rest is stored.

use std::collections::BTreeMap;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedDeviceId, OwnedUserId, ServerName, UserId,
    api::client::keys::upload_signatures::v3::{Failure, SignedKeys},
};
use serde_json::value::RawValue;

use super::{
    device_lists::{self, Change},
    signed_json,
};
use crate::{
    Error, Homeserver, Result,
    accounts::User,
    storage::{
        Conn,
        cross_signing::{self, CrossSigningKeyRow, SignatureRow},
        e2ee_keys,
    },
};

/// Keys whose signatures were not stored, with why: user, then key ID.
pub type SignatureFailures = BTreeMap<OwnedUserId, BTreeMap<String, Failure>>;

/// Why one signed key was refused: an errcode and a message.
type Rejection = (&'static str, String);

/// Which key may have signed the target.
enum Signer {
    /// The uploader's cross-signing key with this public key.
    Key(String),
    /// Any of the uploader's devices (signing their own master key).
    OwnDevices,
}

/// Verifies and stores the signatures `user` uploads; returns the keys that failed.
pub async fn upload(
    hs: &Homeserver,
    user: &User,
    signed: &BTreeMap<OwnedUserId, SignedKeys>,
) -> Result<SignatureFailures> {
    let uploader = &user.user_id;
    let mut failures = SignatureFailures::new();
    // What got new signatures: the uploader's devices and master key (which other servers are
    // told of), or only other users' master keys (which only the uploader sees).
    let (mut own_devices, mut own_master, mut stored_any) = (Vec::new(), false, false);
    let mut tx = hs.db().begin().await?;
    let own = keys_by_type(&mut tx, uploader).await?;
    let own_master_key = own.get("master").map(|m| m.public_key.as_str());
    for (target, keys) in signed {
        for (key_id, json) in keys.iter() {
            match sign_one(&mut tx, hs.server_name(), uploader, &own, target, key_id, json).await? {
                Ok(rows) => {
                    for row in &rows {
                        cross_signing::set_signature(&mut tx, row).await?;
                    }
                    stored_any = true;
                    if target == uploader && own_master_key == Some(key_id) {
                        own_master = true;
                    } else if target == uploader {
                        own_devices.push(OwnedDeviceId::from(key_id));
                    }
                }
                Err((errcode, message)) => {
                    failures
                        .entry(target.clone())
                        .or_default()
                        .insert(key_id.to_owned(), failure(errcode, &message)?);
                }
            }
        }
    }
    if !own_devices.is_empty() {
        device_lists::record_change(hs, &mut tx, uploader, Change::Devices(&own_devices)).await?;
    }
    if own_master {
        device_lists::record_change(hs, &mut tx, uploader, Change::SigningKeys).await?;
    }
    if stored_any && own_devices.is_empty() && !own_master {
        device_lists::record_change(hs, &mut tx, uploader, Change::Private).await?;
    }
    tx.commit().await?;
    if stored_any {
        device_lists::announce(hs, uploader);
    }
    Ok(failures)
}

/// Checks one signed key; the signatures to store, or why not.
async fn sign_one(
    conn: &mut Conn,
    server_name: &ServerName,
    uploader: &UserId,
    own: &BTreeMap<String, CrossSigningKeyRow>,
    target: &UserId,
    key_id: &str,
    json: &RawValue,
) -> Result<Result<Vec<SignatureRow>, Rejection>> {
    let reject = |errcode, message: &str| Ok(Err((errcode, message.to_owned())));
    let Ok(CanonicalJsonValue::Object(uploaded)) = serde_json::from_str::<CanonicalJsonValue>(json.get())
    else {
        return reject("M_BAD_JSON", "The signed key must be a canonical JSON object");
    };
    if target.server_name() != server_name {
        return reject("M_UNRECOGNIZED", "Keys of users on other servers cannot be signed yet");
    }
    let (stored, signer) = if target == uploader {
        match own.get("master") {
            Some(master) if master.public_key == key_id => {
                (signed_json::parse_stored(&master.key_json)?, Signer::OwnDevices)
            }
            _ => {
                let device_id = OwnedDeviceId::from(key_id);
                let Some(keys) = e2ee_keys::device_keys(&mut *conn, uploader, &device_id).await? else {
                    return reject("M_NOT_FOUND", "No such device or master key");
                };
                let Some(ssk) = own.get("self_signing") else {
                    return reject(
                        "M_INVALID_SIGNATURE",
                        "You have no self-signing key to sign devices with",
                    );
                };
                (signed_json::parse_stored(&keys)?, Signer::Key(ssk.public_key.clone()))
            }
        }
    } else {
        let theirs = keys_by_type(conn, target).await?;
        let Some(master) = theirs.get("master").filter(|m| m.public_key == key_id) else {
            return reject("M_NOT_FOUND", "This is not the user's master key");
        };
        let Some(usk) = own.get("user_signing") else {
            return reject("M_INVALID_SIGNATURE", "You have no user-signing key to sign users with");
        };
        (signed_json::parse_stored(&master.key_json)?, Signer::Key(usk.public_key.clone()))
    };
    if !signed_json::same_signed_content(&uploaded, &stored) {
        return reject("M_INVALID_SIGNATURE", "The signed object does not match the stored key");
    }

    let known = signed_json::signatures_by(&stored, uploader);
    let mut rows = Vec::new();
    for (signer_key_id, signature) in signed_json::signatures_by(&uploaded, uploader) {
        if known.get(&signer_key_id) == Some(&signature) {
            continue;
        }
        let Some(public_key) = signer_key(conn, uploader, &signer, &signer_key_id).await? else { continue };
        if !signed_json::verify(&stored, &public_key, &signature) {
            return reject("M_INVALID_SIGNATURE", "Invalid signature");
        }
        rows.push(SignatureRow {
            target_user_id: target.to_owned(),
            target_key_id: key_id.to_owned(),
            signer_user_id: uploader.to_string(),
            signer_key_id,
            signature,
        });
    }
    if rows.is_empty() {
        return reject("M_INVALID_SIGNATURE", "No new signature by a key allowed to sign this key");
    }
    Ok(Ok(rows))
}

/// The public key behind `signer_key_id` if it may sign the target; `None` for any other key
/// (its signature is ignored).
async fn signer_key(
    conn: &mut Conn,
    uploader: &UserId,
    signer: &Signer,
    signer_key_id: &str,
) -> Result<Option<String>> {
    let Some(name) = signer_key_id.strip_prefix("ed25519:") else { return Ok(None) };
    match signer {
        Signer::Key(public_key) => Ok((name == public_key).then(|| public_key.clone())),
        Signer::OwnDevices => {
            let device_id = OwnedDeviceId::from(name);
            let Some(keys) = e2ee_keys::device_keys(&mut *conn, uploader, &device_id).await? else {
                return Ok(None);
            };
            let keys: CanonicalJsonObject = signed_json::parse_stored(&keys)?;
            Ok(signed_json::public_key(&keys, signer_key_id))
        }
    }
}

/// A user's cross-signing keys by type.
async fn keys_by_type(conn: &mut Conn, user_id: &UserId) -> Result<BTreeMap<String, CrossSigningKeyRow>> {
    let rows = cross_signing::keys_of_users(conn, &[user_id]).await?;
    Ok(rows.into_iter().map(|r| (r.key_type.clone(), r)).collect())
}

/// A `failures` entry. ruma's `Failure` has private fields, so it is built from its JSON.
fn failure(errcode: &str, message: &str) -> Result<Failure> {
    serde_json::from_value(serde_json::json!({ "errcode": errcode, "error": message }))
        .map_err(|e| Error::Internal(anyhow::anyhow!("building a signature failure: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_serialise_with_the_spec_fields() {
        let failure = failure("M_INVALID_SIGNATURE", "Invalid signature").expect("failure");
        assert_eq!(
            serde_json::to_value(failure).expect("json"),
            serde_json::json!({ "errcode": "M_INVALID_SIGNATURE", "error": "Invalid signature" })
        );
    }
}
