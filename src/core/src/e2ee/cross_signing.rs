//! Cross-signing keys (spec: Client-Server API › End-to-End Encryption › Cross-signing;
//! `POST /keys/device_signing/upload`): each user's master key, the self-signing key that signs
//! their devices and the user-signing key that signs other users' master keys. The server checks
//! that the subkeys are signed by the master key, stores the keys as uploaded, and returns them
//! from `/keys/query` with the later signatures the querier may see.

use std::collections::BTreeMap;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedUserId, UserId,
    api::{client::uiaa::AuthData, error::ErrorKind},
    encryption::{CrossSigningKey, KeyUsage},
    serde::Raw,
};
use serde_json::value::RawValue;

use super::{
    device_lists::{self, Change},
    signed_json,
};
use crate::{
    Error, Homeserver, Result,
    accounts::{User, uia},
    storage::{
        Conn,
        cross_signing::{self, SignatureRow},
        devices,
    },
    time::now_ms,
};

/// The cross-signing keys one request uploads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SigningKeys<'a> {
    /// The master key.
    pub master: Option<&'a Raw<CrossSigningKey>>,
    /// The self-signing key, signed by the master key.
    pub self_signing: Option<&'a Raw<CrossSigningKey>>,
    /// The user-signing key, signed by the master key.
    pub user_signing: Option<&'a Raw<CrossSigningKey>>,
}

/// The three kinds of cross-signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    Master,
    SelfSigning,
    UserSigning,
}

impl KeyType {
    /// The `key_type` column and the key's `usage`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::Master => "master",
            KeyType::SelfSigning => "self_signing",
            KeyType::UserSigning => "user_signing",
        }
    }

    fn usage(self) -> KeyUsage {
        match self {
            KeyType::Master => KeyUsage::Master,
            KeyType::SelfSigning => KeyUsage::SelfSigning,
            KeyType::UserSigning => KeyUsage::UserSigning,
        }
    }
}

/// An uploaded key that passed the shape checks.
struct CheckedKey {
    key_type: KeyType,
    public_key: String,
    json: String,
    object: CanonicalJsonObject,
}

/// Stores the user's cross-signing keys.
///
/// User-interactive authentication (the user's password) is required once the user has a
/// master key, unless the request uploads that very master key and only keys identical to the
/// stored ones: such a retry changes nothing and succeeds. Subkeys must carry a valid signature
/// of the uploaded master key, or else of the stored one (400 `M_INVALID_SIGNATURE`; 400
/// `M_MISSING_PARAM` without any master key); no key may be named like one of the user's
/// devices (403).
pub async fn upload(
    hs: &Homeserver,
    user: &User,
    auth: Option<&AuthData>,
    keys: SigningKeys<'_>,
) -> Result<()> {
    let user_id = &user.user_id;
    let uploaded = [
        (KeyType::Master, keys.master),
        (KeyType::SelfSigning, keys.self_signing),
        (KeyType::UserSigning, keys.user_signing),
    ]
    .into_iter()
    .filter_map(|(key_type, raw)| raw.map(|raw| checked(user_id, key_type, raw)))
    .collect::<Result<Vec<CheckedKey>>>()?;

    let mut conn = hs.db().pool().acquire().await?;
    let stored: BTreeMap<String, cross_signing::CrossSigningKeyRow> =
        cross_signing::keys_of_users(&mut conn, &[user_id])
            .await?
            .into_iter()
            .map(|r| (r.key_type.clone(), r))
            .collect();
    drop(conn);
    let unchanged =
        uploaded.iter().all(|k| stored.get(k.key_type.name()).is_some_and(|s| s.key_json == k.json));
    let uploads_master = uploaded.iter().any(|k| k.key_type == KeyType::Master);
    if stored.contains_key(KeyType::Master.name()) && !(uploads_master && unchanged) {
        uia::check(hs, auth, &uia::password_flows(), Some(user_id)).await?;
    }
    if unchanged {
        return Ok(());
    }

    let master = uploaded
        .iter()
        .find(|k| k.key_type == KeyType::Master)
        .map(|k| k.public_key.as_str())
        .or_else(|| stored.get(KeyType::Master.name()).map(|r| r.public_key.as_str()))
        .ok_or_else(|| Error::missing_param("No master signing key is available"))?;
    for key in uploaded.iter().filter(|k| k.key_type != KeyType::Master) {
        if !signed_json::signed_by_key(&key.object, user_id, master) {
            return Err(invalid_signature(format!(
                "The {} key is not signed by the master key",
                key.key_type.name()
            )));
        }
    }
    let device_ids = devices::list(hs.db().pool(), user_id).await?;
    if uploaded.iter().any(|k| device_ids.iter().any(|d| d.device_id.as_str() == k.public_key)) {
        return Err(Error::forbidden("Key ID in use by one of your devices"));
    }

    let mut tx = hs.db().begin().await?;
    for key in &uploaded {
        cross_signing::set_key(&mut tx, user_id, key.key_type.name(), &key.public_key, &key.json, now_ms())
            .await?;
    }
    // The user-signing key is the user's alone; the others are everyone's to check against.
    let change = if uploaded.iter().all(|k| k.key_type == KeyType::UserSigning) {
        Change::Private
    } else {
        Change::SigningKeys
    };
    device_lists::record_change(hs, &mut tx, user_id, change).await?;
    tx.commit().await?;
    device_lists::announce(hs, user_id);
    Ok(())
}

/// Checks an uploaded key's shape: the uploader's, with the expected usage, and exactly one
/// ed25519 key whose ID names the key itself.
fn checked(user_id: &UserId, key_type: KeyType, raw: &Raw<CrossSigningKey>) -> Result<CheckedKey> {
    let name = key_type.name();
    let key: CrossSigningKey =
        raw.deserialize().map_err(|e| Error::bad_json(format!("Invalid {name} key: {e}")))?;
    if key.user_id != user_id {
        return Err(Error::invalid_param(format!("The {name} key must belong to the uploading user")));
    }
    if !key.usage.contains(&key_type.usage()) {
        return Err(Error::invalid_param(format!("The {name} key's usage must include {name}")));
    }
    let mut ed25519 =
        key.keys.iter().filter_map(|(id, value)| Some((id.as_str().strip_prefix("ed25519:")?, value)));
    let public_key = match (ed25519.next(), ed25519.next(), key.keys.len()) {
        (Some((id, value)), None, 1) if id == value => id.to_owned(),
        _ => {
            return Err(Error::invalid_param(format!(
                "The {name} key must hold one ed25519 key, named by itself"
            )));
        }
    };
    let value: CanonicalJsonValue = serde_json::from_str(raw.json().get())
        .map_err(|e| Error::bad_json(format!("Keys must be canonical JSON: {e}")))?;
    let CanonicalJsonValue::Object(object) = value else {
        return Err(Error::bad_json(format!("The {name} key must be an object")));
    };
    Ok(CheckedKey {
        key_type,
        public_key,
        json: CanonicalJsonValue::Object(object.clone()).to_string(),
        object,
    })
}

/// Uploaded signatures indexed by the key they sign: `(owner, device ID or public key)`.
pub(crate) type SignatureIndex = BTreeMap<(OwnedUserId, String), Vec<SignatureRow>>;

/// The uploaded signatures of `users`' keys that `viewer` may see, by signed key.
pub(crate) async fn visible_signatures(
    conn: &mut Conn,
    users: &[&UserId],
    viewer: Option<&UserId>,
) -> Result<SignatureIndex> {
    let mut index = SignatureIndex::new();
    for row in cross_signing::signatures_visible_to(conn, users, viewer).await? {
        index.entry((row.target_user_id.clone(), row.target_key_id.clone())).or_default().push(row);
    }
    Ok(index)
}

/// `object` with the uploaded signatures of the key `(owner, key_id)` merged in.
pub(crate) fn merge_signatures(
    object: &mut CanonicalJsonObject,
    signatures: &SignatureIndex,
    owner: &UserId,
    key_id: &str,
) {
    for row in signatures.get(&(owner.to_owned(), key_id.to_owned())).into_iter().flatten() {
        signed_json::add_signature(object, &row.signer_user_id, &row.signer_key_id, &row.signature);
    }
}

/// The cross-signing keys of `users` as `/keys/query` returns them.
#[derive(Debug, Default)]
pub(crate) struct QueriedSigningKeys {
    pub(crate) master: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub(crate) self_signing: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub(crate) user_signing: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
}

/// The master and self-signing keys of `users`, and `viewer`'s own user-signing key, each with
/// the uploaded signatures `viewer` may see.
pub(crate) async fn for_query(
    conn: &mut Conn,
    users: &[&UserId],
    viewer: Option<&UserId>,
    signatures: &SignatureIndex,
) -> Result<QueriedSigningKeys> {
    let mut answer = QueriedSigningKeys::default();
    for row in cross_signing::keys_of_users(conn, users).await? {
        let map = match row.key_type.as_str() {
            "master" => &mut answer.master,
            "self_signing" => &mut answer.self_signing,
            "user_signing" if viewer == Some(row.user_id.as_ref()) => &mut answer.user_signing,
            _ => continue,
        };
        let mut object = signed_json::parse_stored(&row.key_json)?;
        merge_signatures(&mut object, signatures, &row.user_id, &row.public_key);
        map.insert(row.user_id, raw(CanonicalJsonValue::Object(object).to_string())?);
    }
    Ok(answer)
}

/// 400 `M_INVALID_SIGNATURE`, which ruma has no variant for.
pub(crate) fn invalid_signature(message: impl Into<String>) -> Error {
    Error::matrix(http::StatusCode::BAD_REQUEST, invalid_signature_kind(), message)
}

/// The `M_INVALID_SIGNATURE` errcode.
pub(crate) fn invalid_signature_kind() -> ErrorKind {
    serde_json::from_value(serde_json::json!({ "errcode": "M_INVALID_SIGNATURE" }))
        .unwrap_or(ErrorKind::InvalidParam)
}

fn raw<T>(json: String) -> Result<Raw<T>> {
    let value =
        RawValue::from_string(json).map_err(|e| Error::Internal(anyhow::anyhow!("stored key JSON: {e}")))?;
    Ok(Raw::from_json(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_key(json: serde_json::Value) -> Raw<CrossSigningKey> {
        Raw::from_json(serde_json::value::to_raw_value(&json).expect("json"))
    }

    #[test]
    fn keys_must_be_the_users_own_with_the_right_usage_and_one_self_named_key() {
        let user: &UserId = "@alice:x".try_into().expect("user");
        let good = raw_key(serde_json::json!({
            "user_id": "@alice:x", "usage": ["master"], "keys": { "ed25519:PUB": "PUB" },
        }));
        let key = checked(user, KeyType::Master, &good).expect("a well-formed master key");
        assert_eq!(key.public_key, "PUB");
        assert_eq!(key.json, r#"{"keys":{"ed25519:PUB":"PUB"},"usage":["master"],"user_id":"@alice:x"}"#);
        assert!(checked(user, KeyType::SelfSigning, &good).is_err(), "wrong usage");

        for bad in [
            serde_json::json!({ "user_id": "@bob:x", "usage": ["master"], "keys": { "ed25519:PUB": "PUB" } }),
            serde_json::json!({ "user_id": "@alice:x", "usage": ["master"], "keys": { "ed25519:PUB": "OTHER" } }),
            serde_json::json!({ "user_id": "@alice:x", "usage": ["master"], "keys": {} }),
            serde_json::json!({ "user_id": "@alice:x", "usage": ["master"],
                                "keys": { "ed25519:PUB": "PUB", "ed25519:TWO": "TWO" } }),
            serde_json::json!({ "user_id": "@alice:x", "usage": ["master"] }),
        ] {
            assert!(checked(user, KeyType::Master, &raw_key(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_invalid_signature_errcode_survives_the_round_trip() {
        assert_eq!(invalid_signature_kind().errcode().to_string(), "M_INVALID_SIGNATURE");
    }
}
