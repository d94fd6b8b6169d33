//! Devices' public encryption keys (spec: Client-Server API › End-to-End Encryption › Key
//! management API): identity keys, one-time keys and fallback keys, uploaded by their device and
//! queried or claimed by any user's devices.
//!
//! Keys are stored as the canonical JSON the client sent: their signatures cover exactly that,
//! and other devices verify them. Only `unsigned` (which no signature covers) is the server's.

use std::collections::{BTreeMap, BTreeSet};

use ruma::{
    CanonicalJsonValue, DeviceId, OneTimeKeyAlgorithm, OwnedDeviceId, OwnedOneTimeKeyId, OwnedUserId, UInt,
    UserId,
    encryption::{CrossSigningKey, DeviceKeys, OneTimeKey},
    serde::Raw,
};
use serde_json::{Value as JsonValue, json, value::RawValue};

use super::{
    cross_signing::{self, SignatureIndex},
    device_lists::{self, Change},
};
use crate::{
    Error, Homeserver, Result,
    accounts::User,
    storage::{Conn, e2ee_keys},
    time::now_ms,
    user_cache::UserCache,
};

/// Unclaimed one-time keys of a device per algorithm; `signed_curve25519` is always listed (as 0
/// when none are left), the algorithm every Olm client counts.
pub type OneTimeKeyCounts = BTreeMap<OneTimeKeyAlgorithm, UInt>;

/// The answer to a `/keys/query`.
#[derive(Debug, Default)]
pub struct QueriedKeys {
    /// Identity keys per user and device, with `unsigned.device_display_name` and the
    /// signatures of the owner's self-signing key. Every queried local user is listed, with an
    /// empty map when they have no keys (or do not exist).
    pub device_keys: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>>,
    /// Master keys of the queried users that have one, with the signatures the querier may see.
    pub master_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// Self-signing keys of the queried users that have one.
    pub self_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// The querier's own user-signing key, if they queried themselves.
    pub user_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    /// Servers that could not be asked, with why.
    pub failures: BTreeMap<String, JsonValue>,
}

/// The answer to a `/keys/claim`.
#[derive(Debug, Default)]
pub struct ClaimedKeys {
    /// One key per user, device and requested algorithm; devices without one are left out.
    pub one_time_keys:
        BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>>>,
    /// Servers that could not be asked, with why.
    pub failures: BTreeMap<String, JsonValue>,
}

/// What a device publishes with `/keys/upload`.
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The device's identity keys.
    pub device_keys: Option<&'a Raw<DeviceKeys>>,
    /// New one-time keys.
    pub one_time_keys: &'a BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
    /// New fallback keys, at most one per algorithm.
    pub fallback_keys: &'a BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>,
}

/// Stores the keys the authenticated device uploads and returns its one-time key counts.
///
/// Identity keys must name the uploading user and device; uploading the same identity keys
/// again is fine, other ones for the same device are refused (other devices would see a known
/// device change its keys). A one-time key ID may be uploaded again only with the same key.
pub async fn upload(hs: &Homeserver, user: &User, upload: Upload<'_>) -> Result<OneTimeKeyCounts> {
    let device_keys = upload.device_keys.map(|raw| checked_device_keys(user, raw)).transpose()?;
    let one_time_keys = canonical_keys(upload.one_time_keys)?;
    let fallback_keys = canonical_keys(upload.fallback_keys)?;
    let algorithms: BTreeSet<&str> = fallback_keys.iter().map(|k| k.algorithm.as_str()).collect();
    if algorithms.len() < fallback_keys.len() {
        return Err(Error::invalid_param("At most one fallback key per algorithm may be uploaded"));
    }

    let (user_id, device_id) = (&user.user_id, &user.device_id);
    let mut tx = hs.db().begin().await?;
    let mut changed = false;
    if let Some((keys, json)) = device_keys {
        changed = store_device_keys(&mut tx, user, &keys, &json).await?;
    }
    if changed {
        device_lists::record_change(hs, &mut tx, user_id, Change::Devices(std::slice::from_ref(device_id)))
            .await?;
    }
    for key in &one_time_keys {
        store_one_time_key(&mut tx, user, key).await?;
    }
    for key in &fallback_keys {
        e2ee_keys::set_fallback_key(&mut tx, user_id, device_id, &key.algorithm, &key.key_id, &key.json)
            .await?;
    }
    let counts = e2ee_keys::one_time_key_counts(&mut *tx, user_id, device_id).await?;
    tx.commit().await?;
    key_counts_changed(hs, user_id, device_id);
    if changed {
        device_lists::announce(hs, user_id);
    }
    Ok(to_counts(counts))
}

/// Stores the device's identity keys, unless it already has other ones; `true` when they were
/// new or changed.
async fn store_device_keys(conn: &mut Conn, user: &User, keys: &DeviceKeys, json: &str) -> Result<bool> {
    let (user_id, device_id) = (&user.user_id, &user.device_id);
    match e2ee_keys::device_keys(&mut *conn, user_id, device_id).await? {
        Some(stored) if stored == json => Ok(false),
        Some(stored) if parse_device_keys(&stored)?.keys != keys.keys => Err(Error::invalid_param(
            "This device already has different identity keys; log in as a new device to use new keys",
        )),
        // New keys, or the same identity keys with other signatures or algorithms.
        _ => {
            e2ee_keys::set_device_keys(conn, user_id, device_id, json, now_ms()).await?;
            Ok(true)
        }
    }
}

/// Adds a one-time key; one already there under this ID must be the very same key.
async fn store_one_time_key(conn: &mut Conn, user: &User, key: &CanonicalKey) -> Result<()> {
    let (user_id, device_id) = (&user.user_id, &user.device_id);
    let (algorithm, key_id) = (key.algorithm.as_str(), key.key_id.as_str());
    if e2ee_keys::insert_one_time_key(&mut *conn, user_id, device_id, algorithm, key_id, &key.json).await? {
        return Ok(());
    }
    let stored = e2ee_keys::one_time_key(conn, user_id, device_id, algorithm, key_id).await?;
    if stored.as_deref() == Some(key.json.as_str()) {
        Ok(())
    } else {
        Err(Error::invalid_param(format!(
            "One-time key {algorithm}:{key_id} already exists with other content"
        )))
    }
}

/// The identity keys of the requested devices (an empty list asks for all of a user's devices)
/// and the users' cross-signing keys, as `viewer` may see them (`None`: another server asks, and
/// sees only the owners' own signatures). Users on other servers are not asked here: their server
/// is listed in `failures` (the caller may ask it over federation).
pub async fn query(
    hs: &Homeserver,
    viewer: Option<&UserId>,
    requested: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
) -> Result<QueriedKeys> {
    let mut answer = QueriedKeys::default();
    let mut local = Vec::new();
    for user_id in requested.keys() {
        if user_id.server_name() == hs.server_name() {
            answer.device_keys.insert(user_id.clone(), BTreeMap::new());
            local.push(user_id.as_ref());
        } else {
            answer.failures.insert(user_id.server_name().to_string(), federation_unavailable());
        }
    }
    let mut conn = hs.db().pool().acquire().await?;
    let found = keys_of(&mut conn, &local, viewer).await?;
    for (user_id, devices) in found.device_keys {
        let wanted = requested.get(&user_id).map(Vec::as_slice).unwrap_or_default();
        let devices =
            devices.into_iter().filter(|(device_id, _)| wanted.is_empty() || wanted.contains(device_id));
        answer.device_keys.entry(user_id).or_default().extend(devices);
    }
    answer.master_keys = found.master_keys;
    answer.self_signing_keys = found.self_signing_keys;
    answer.user_signing_keys = found.user_signing_keys;
    Ok(answer)
}

/// Every device's identity keys and the cross-signing keys of the local `users`, as `viewer`
/// may see them (see [`query`]), read on `conn` (a writer's transaction sees its own changes).
pub(crate) async fn keys_of(
    conn: &mut Conn,
    users: &[&UserId],
    viewer: Option<&UserId>,
) -> Result<QueriedKeys> {
    let mut answer = QueriedKeys::default();
    let signatures = cross_signing::visible_signatures(conn, users, viewer).await?;
    for row in e2ee_keys::device_keys_of_users(conn, users).await? {
        let keys = queried_device_keys(&row, &signatures)?;
        answer.device_keys.entry(row.user_id).or_default().insert(row.device_id, keys);
    }
    let signing = cross_signing::for_query(conn, users, viewer, &signatures).await?;
    answer.master_keys = signing.master;
    answer.self_signing_keys = signing.self_signing;
    answer.user_signing_keys = signing.user_signing;
    Ok(answer)
}

/// Hands out one key per requested device and algorithm: the oldest one-time key, which is
/// removed so no one gets it again, or else the device's fallback key, which stays (marked
/// used). Users on other servers are not asked here: their server is listed in `failures` (the
/// caller may ask it over federation).
pub async fn claim(
    hs: &Homeserver,
    requested: &BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>,
) -> Result<ClaimedKeys> {
    let mut answer = ClaimedKeys::default();
    let backend = hs.db().backend();
    let mut tx = hs.db().begin().await?;
    for (user_id, devices) in requested {
        if user_id.server_name() != hs.server_name() {
            answer.failures.insert(user_id.server_name().to_string(), federation_unavailable());
            continue;
        }
        for (device_id, algorithm) in devices {
            let algorithm = algorithm.as_str();
            let claimed = match e2ee_keys::claim_one_time_key(&mut tx, backend, user_id, device_id, algorithm)
                .await?
            {
                Some(key) => Some(key),
                None => match e2ee_keys::fallback_key(&mut tx, user_id, device_id, algorithm).await? {
                    Some(fallback) => {
                        if !fallback.used {
                            e2ee_keys::mark_fallback_key_used(&mut tx, user_id, device_id, algorithm).await?;
                        }
                        Some((fallback.key_id, fallback.key_json))
                    }
                    None => None,
                },
            };
            if let Some((key_id, json)) = claimed {
                let id = OwnedOneTimeKeyId::try_from(format!("{algorithm}:{key_id}"))
                    .map_err(|e| Error::Internal(anyhow::anyhow!("stored one-time key ID: {e}")))?;
                let devices = answer.one_time_keys.entry(user_id.clone()).or_default();
                devices.entry(device_id.clone()).or_default().insert(id, raw(json)?);
            }
        }
    }
    tx.commit().await?;
    for (user_id, devices) in &answer.one_time_keys {
        for device_id in devices.keys() {
            key_counts_changed(hs, user_id, device_id);
        }
    }
    Ok(answer)
}

/// A device's unclaimed one-time keys per algorithm, and the algorithms for which it has a
/// fallback key no one has claimed yet (`/sync`'s `device_one_time_keys_count` and
/// `device_unused_fallback_key_types`).
pub type KeyCounts = (OneTimeKeyCounts, Vec<OneTimeKeyAlgorithm>);

/// The per-device cache of [`KeyCounts`], which every sync reads: forgotten after every upload,
/// claim and (re)creation of the device.
pub type KeyCountCache = UserCache<KeyCounts, (OwnedUserId, OwnedDeviceId)>;

/// The device's [`KeyCounts`].
pub async fn key_counts(hs: &Homeserver, user_id: &UserId, device_id: &DeviceId) -> Result<KeyCounts> {
    let key = (user_id.to_owned(), device_id.to_owned());
    hs.key_counts()
        .get(&key, || async {
            let mut conn = hs.db().pool().acquire().await?;
            let (one_time, fallback) = e2ee_keys::key_counts(&mut *conn, user_id, device_id).await?;
            Ok((to_counts(one_time), fallback.into_iter().map(OneTimeKeyAlgorithm::from).collect()))
        })
        .await
}

/// Forgets the device's cached [`KeyCounts`]; call after a write that changed them committed.
pub fn key_counts_changed(hs: &Homeserver, user_id: &UserId, device_id: &DeviceId) {
    hs.key_counts().forget(&(user_id.to_owned(), device_id.to_owned()));
}

/// A one-time or fallback key ready to store.
struct CanonicalKey {
    algorithm: String,
    key_id: String,
    json: String,
}

/// Checks uploaded identity keys: well-formed, canonical JSON, naming the uploading user and
/// device. Returns them parsed and as canonical JSON.
fn checked_device_keys(user: &User, raw: &Raw<DeviceKeys>) -> Result<(DeviceKeys, String)> {
    let keys: DeviceKeys =
        raw.deserialize().map_err(|e| Error::bad_json(format!("Invalid device_keys: {e}")))?;
    if keys.user_id != user.user_id {
        return Err(Error::invalid_param("device_keys.user_id must be the user who uploads them"));
    }
    if keys.device_id != user.device_id {
        return Err(Error::invalid_param("device_keys.device_id must be the device that uploads them"));
    }
    Ok((keys, canonical(raw.json())?))
}

/// Checks and canonicalizes uploaded one-time or fallback keys.
fn canonical_keys(keys: &BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>) -> Result<Vec<CanonicalKey>> {
    keys.iter()
        .map(|(id, key)| {
            key.deserialize().map_err(|e| Error::bad_json(format!("Invalid key {id}: {e}")))?;
            Ok(CanonicalKey {
                algorithm: id.algorithm().to_string(),
                key_id: id.key_name().to_string(),
                json: canonical(key.json())?,
            })
        })
        .collect()
}

/// The canonical form of a JSON value, or 400 `M_BAD_JSON` for values canonical JSON cannot
/// hold (floats, integers beyond 2^53).
fn canonical(json: &RawValue) -> Result<String> {
    let value: CanonicalJsonValue = serde_json::from_str(json.get())
        .map_err(|e| Error::bad_json(format!("Keys must be canonical JSON: {e}")))?;
    Ok(value.to_string())
}

fn parse_device_keys(stored: &str) -> Result<DeviceKeys> {
    serde_json::from_str(stored).map_err(|e| Error::Internal(anyhow::anyhow!("stored device keys: {e}")))
}

/// Stored identity keys as `/keys/query` returns them: with the uploaded signatures of the
/// device, and the device's display name in `unsigned`.
fn queried_device_keys(
    row: &e2ee_keys::DeviceKeysRow,
    signatures: &SignatureIndex,
) -> Result<Raw<DeviceKeys>> {
    let mut object: BTreeMap<String, CanonicalJsonValue> = serde_json::from_str(&row.key_json)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored device keys: {e}")))?;
    cross_signing::merge_signatures(&mut object, signatures, &row.user_id, row.device_id.as_str());
    with_display_name(object, row.display_name.as_deref())
}

/// Identity keys with the server's `unsigned` section: the device's display name.
fn with_display_name(
    mut object: BTreeMap<String, CanonicalJsonValue>,
    display_name: Option<&str>,
) -> Result<Raw<DeviceKeys>> {
    let unsigned = match display_name {
        Some(name) => json!({ "device_display_name": name }),
        None => json!({}),
    };
    let unsigned = CanonicalJsonValue::try_from(unsigned)
        .map_err(|e| Error::Internal(anyhow::anyhow!("unsigned device info: {e}")))?;
    object.insert("unsigned".to_owned(), unsigned);
    raw(CanonicalJsonValue::Object(object).to_string())
}

fn raw<T>(json: String) -> Result<Raw<T>> {
    let value =
        RawValue::from_string(json).map_err(|e| Error::Internal(anyhow::anyhow!("stored key JSON: {e}")))?;
    Ok(Raw::from_json(value))
}

fn to_counts(rows: Vec<(String, i64)>) -> OneTimeKeyCounts {
    let mut counts = OneTimeKeyCounts::from([(OneTimeKeyAlgorithm::SignedCurve25519, UInt::MIN)]);
    for (algorithm, n) in rows {
        counts.insert(algorithm.into(), UInt::try_from(n).unwrap_or(UInt::MAX));
    }
    counts
}

/// The `failures` entry for a server Hearth cannot ask yet (federation is not built).
fn federation_unavailable() -> JsonValue {
    json!({ "status": 503, "message": "Keys of users on other servers are not available yet" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_always_list_signed_curve25519() {
        let none = to_counts(Vec::new());
        assert_eq!(none.get(&OneTimeKeyAlgorithm::SignedCurve25519), Some(&UInt::MIN));
        let some = to_counts(vec![("signed_curve25519".to_owned(), 3), ("curve25519".to_owned(), 1)]);
        assert_eq!(some.get(&OneTimeKeyAlgorithm::SignedCurve25519), Some(&UInt::from(3u32)));
        assert_eq!(some.get(&OneTimeKeyAlgorithm::from("curve25519")), Some(&UInt::from(1u32)));
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let raw =
            RawValue::from_string(r#"{ "b": 1, "a": {"d": "x", "c": true} }"#.to_owned()).expect("json");
        assert_eq!(canonical(&raw).expect("canonical"), r#"{"a":{"c":true,"d":"x"},"b":1}"#);
        let float = RawValue::from_string(r#"{"a": 1.5}"#.to_owned()).expect("json");
        assert!(canonical(&float).is_err(), "floats are not canonical JSON");
    }

    #[test]
    fn the_display_name_replaces_any_client_unsigned_section() {
        let stored: BTreeMap<String, CanonicalJsonValue> =
            serde_json::from_str(r#"{"device_id":"D","unsigned":{"x":1},"user_id":"@a:h"}"#).expect("json");
        let named = with_display_name(stored.clone(), Some("Phone")).expect("keys");
        assert_eq!(
            named.json().get(),
            r#"{"device_id":"D","unsigned":{"device_display_name":"Phone"},"user_id":"@a:h"}"#
        );
        let unnamed = with_display_name(stored, None).expect("keys");
        assert_eq!(unnamed.json().get(), r#"{"device_id":"D","unsigned":{},"user_id":"@a:h"}"#);
    }
}
