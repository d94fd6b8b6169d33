//! Server-side key backups (spec: Client-Server API › End-to-End Encryption › Server-side key
//! backups): a user's encrypted megolm session keys, in versions. Keys are written only to the
//! current (newest undeleted) version; a key already backed up is replaced only by a better one
//! (verified over unverified, then the lower `first_message_index`, then the lower
//! `forwarded_count`). Each version has a `count` of keys and an `etag` that changes with them.
//!
//! `auth_data` and `session_data` are algorithm-specific objects the server keeps as they came:
//! it cannot decrypt them and does not interpret them.

use std::collections::BTreeMap;

use http::StatusCode;
use ruma::{
    OwnedRoomId, RoomId, UInt, UserId,
    api::{
        client::backup::{BackupAlgorithm, KeyBackupData},
        error::{ErrorKind, WrongRoomKeysVersionErrorData},
    },
    serde::Raw,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    Error, Homeserver, Result,
    storage::{
        Conn,
        backup::{self, KeyRow, VersionRow},
    },
};

/// A backup version as `GET /room_keys/version` describes it.
#[derive(Debug)]
pub struct BackupInfo {
    /// The version ID.
    pub version: String,
    /// `{"algorithm": .., "auth_data": ..}`.
    pub algorithm: Raw<BackupAlgorithm>,
    /// How many keys it holds.
    pub count: UInt,
    /// Changes whenever its keys do.
    pub etag: String,
}

/// A version's `etag` and `count` after a change to its keys.
#[derive(Debug)]
pub struct KeysUpdate {
    /// The new etag.
    pub etag: String,
    /// How many keys the version holds now.
    pub count: UInt,
}

/// Which keys of a version a request reads or deletes.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every key.
    All,
    /// The keys of one room.
    Room(&'a RoomId),
    /// The key of one session.
    Session(&'a RoomId, &'a str),
}

/// Backed-up keys by room and session.
pub type RoomKeys = BTreeMap<OwnedRoomId, BTreeMap<String, Raw<KeyBackupData>>>;

/// The algorithm of a backup and its data, as uploaded.
#[derive(Deserialize, Serialize)]
struct Algorithm<'a> {
    algorithm: String,
    #[serde(borrow)]
    auth_data: &'a RawValue,
    #[serde(default, skip_serializing)]
    version: Option<String>,
}

/// A backed-up key, as uploaded: `session_data` is kept as it came.
#[derive(Deserialize, Serialize)]
struct SessionKey<'a> {
    first_message_index: UInt,
    forwarded_count: UInt,
    is_verified: bool,
    #[serde(borrow)]
    session_data: &'a RawValue,
}

/// `POST /room_keys/version`: creates a version, which becomes the current one.
pub async fn create_version(
    hs: &Homeserver,
    user_id: &UserId,
    algorithm: &Raw<BackupAlgorithm>,
) -> Result<String> {
    let algorithm = parse_algorithm(algorithm)?;
    let mut tx = hs.db().begin().await?;
    let version =
        backup::create_version(&mut tx, user_id, &algorithm.algorithm, algorithm.auth_data.get()).await?;
    tx.commit().await?;
    Ok(version.to_string())
}

/// `GET /room_keys/version[/{version}]`: the given version, or the current one; 404 if there is
/// none (or it was deleted).
pub async fn info(hs: &Homeserver, user_id: &UserId, version: Option<&str>) -> Result<BackupInfo> {
    let mut conn = hs.db().pool().acquire().await?;
    let row = match version {
        Some(version) => existing(&mut conn, user_id, version).await?,
        None => backup::current_version(&mut conn, user_id)
            .await?
            .ok_or_else(|| Error::not_found("No backup exists"))?,
    };
    let count = backup::count_keys(&mut conn, row.version).await?;
    let algorithm = serde_json::json!({
        "algorithm": row.algorithm,
        "auth_data": serde_json::from_str::<&RawValue>(&row.auth_data).map_err(stored)?,
    });
    Ok(BackupInfo {
        version: row.version.to_string(),
        algorithm: Raw::from_json(serde_json::value::to_raw_value(&algorithm).map_err(stored)?),
        count: to_uint(count),
        etag: row.etag.to_string(),
    })
}

/// `PUT /room_keys/version/{version}`: replaces the version's `auth_data`. The algorithm, and
/// the version if the body names one, must be the version's own (400 `M_INVALID_PARAM`).
pub async fn update_version(
    hs: &Homeserver,
    user_id: &UserId,
    version: &str,
    algorithm: &Raw<BackupAlgorithm>,
) -> Result<()> {
    let update = parse_algorithm(algorithm)?;
    if update.version.as_deref().is_some_and(|v| v != version) {
        return Err(Error::invalid_param("The version in the body does not match the one in the path"));
    }
    let mut tx = hs.db().begin().await?;
    let row = existing(&mut tx, user_id, version).await?;
    if row.algorithm != update.algorithm {
        return Err(Error::invalid_param("The algorithm does not match the backup's"));
    }
    backup::set_auth_data(&mut tx, row.version, update.auth_data.get()).await?;
    tx.commit().await?;
    Ok(())
}

/// `DELETE /room_keys/version/{version}`: deletes the version and its keys; deleting it again
/// succeeds, an unknown version is 404.
pub async fn delete_version(hs: &Homeserver, user_id: &UserId, version: &str) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let row = match version.parse::<i64>() {
        Ok(id) => backup::version(&mut tx, user_id, id).await?,
        Err(_) => None,
    };
    let row = row.ok_or_else(unknown_version)?;
    if !row.deleted {
        backup::delete_version(&mut tx, row.version).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `PUT /room_keys/keys[/{roomId}[/{sessionId}]]`: stores keys in the current version, each
/// unless the version holds a better key for its session. Another version is 403
/// `M_WRONG_ROOM_KEYS_VERSION` naming the current one; no backup at all is 404.
pub async fn put_keys(
    hs: &Homeserver,
    user_id: &UserId,
    version: &str,
    keys: &[(&RoomId, &str, &Raw<KeyBackupData>)],
) -> Result<KeysUpdate> {
    let mut uploaded = Vec::with_capacity(keys.len());
    for (room_id, session_id, raw) in keys {
        let key: SessionKey<'_> = serde_json::from_str(raw.json().get())
            .map_err(|e| Error::bad_json(format!("Invalid key for session {session_id}: {e}")))?;
        if !key.session_data.get().trim_start().starts_with('{') {
            return Err(Error::bad_json(format!("session_data of session {session_id} must be an object")));
        }
        uploaded.push(KeyRow {
            room_id: room_id.to_string(),
            session_id: (*session_id).to_owned(),
            first_message_index: i64::from(key.first_message_index),
            forwarded_count: i64::from(key.forwarded_count),
            is_verified: key.is_verified,
            session_data: key.session_data.get().to_owned(),
        });
    }

    let mut tx = hs.db().begin().await?;
    let current = backup::current_version(&mut tx, user_id)
        .await?
        .ok_or_else(|| Error::not_found("No backup exists"))?;
    if current.version.to_string() != version {
        return Err(Error::matrix(
            StatusCode::FORBIDDEN,
            ErrorKind::WrongRoomKeysVersion(WrongRoomKeysVersionErrorData::new(current.version.to_string())),
            "Keys may only be stored in the current backup version",
        ));
    }
    let mut stored: BTreeMap<(String, String), KeyRow> = BTreeMap::new();
    let rooms: std::collections::BTreeSet<&str> = uploaded.iter().map(|k| k.room_id.as_str()).collect();
    for room_id in rooms {
        for key in backup::keys(&mut tx, current.version, Some(room_id), None).await? {
            stored.insert((key.room_id.clone(), key.session_id.clone()), key);
        }
    }
    let mut changed = false;
    for key in uploaded {
        let slot = (key.room_id.clone(), key.session_id.clone());
        if stored.get(&slot).is_none_or(|old| replaces(&key, old)) {
            backup::put_key(&mut tx, current.version, &key).await?;
            stored.insert(slot, key);
            changed = true;
        }
    }
    let update = settle(&mut tx, &current, changed).await?;
    tx.commit().await?;
    Ok(update)
}

/// `GET /room_keys/keys[/{roomId}[/{sessionId}]]`: the version's keys in `scope`. A room without
/// keys is an empty map; a session without a key is 404.
pub async fn get_keys(
    hs: &Homeserver,
    user_id: &UserId,
    version: &str,
    scope: Scope<'_>,
) -> Result<RoomKeys> {
    let mut conn = hs.db().pool().acquire().await?;
    let row = existing(&mut conn, user_id, version).await?;
    let (room, session) = bounds(scope);
    let mut answer = RoomKeys::new();
    for key in backup::keys(&mut conn, row.version, room.as_deref(), session).await? {
        let room_id = OwnedRoomId::try_from(key.room_id.as_str()).map_err(stored)?;
        answer.entry(room_id).or_default().insert(key.session_id.clone(), key_data(&key)?);
    }
    if let Scope::Session(..) = scope
        && answer.is_empty()
    {
        return Err(Error::not_found("No key for this session"));
    }
    Ok(answer)
}

/// `DELETE /room_keys/keys[/{roomId}[/{sessionId}]]`: deletes the version's keys in `scope`.
pub async fn delete_keys(
    hs: &Homeserver,
    user_id: &UserId,
    version: &str,
    scope: Scope<'_>,
) -> Result<KeysUpdate> {
    let mut tx = hs.db().begin().await?;
    let row = existing(&mut tx, user_id, version).await?;
    let (room, session) = bounds(scope);
    let deleted = backup::delete_keys(&mut tx, row.version, room.as_deref(), session).await?;
    let update = settle(&mut tx, &row, deleted > 0).await?;
    tx.commit().await?;
    Ok(update)
}

/// Whether an uploaded key replaces the stored key of the same session (spec: Server-side key
/// backups): the verified one wins; then the lower first message index; then the lower
/// forwarded count. A key no better than the stored one leaves it.
fn replaces(new: &KeyRow, old: &KeyRow) -> bool {
    if new.is_verified != old.is_verified {
        return new.is_verified;
    }
    if new.first_message_index != old.first_message_index {
        return new.first_message_index < old.first_message_index;
    }
    new.forwarded_count < old.forwarded_count
}

/// The etag (advanced if the keys `changed`) and count of a version.
async fn settle(conn: &mut Conn, row: &VersionRow, changed: bool) -> Result<KeysUpdate> {
    let etag = if changed { backup::bump_etag(conn, row.version).await? } else { row.etag };
    let count = backup::count_keys(conn, row.version).await?;
    Ok(KeysUpdate { etag: etag.to_string(), count: to_uint(count) })
}

/// A version of the user that exists and is not deleted, or 404.
async fn existing(conn: &mut Conn, user_id: &UserId, version: &str) -> Result<VersionRow> {
    let Ok(id) = version.parse::<i64>() else { return Err(unknown_version()) };
    match backup::version(conn, user_id, id).await? {
        Some(row) if !row.deleted => Ok(row),
        _ => Err(unknown_version()),
    }
}

/// The room and session a scope is limited to.
fn bounds(scope: Scope<'_>) -> (Option<String>, Option<&str>) {
    match scope {
        Scope::All => (None, None),
        Scope::Room(room_id) => (Some(room_id.to_string()), None),
        Scope::Session(room_id, session_id) => (Some(room_id.to_string()), Some(session_id)),
    }
}

fn parse_algorithm(raw: &Raw<BackupAlgorithm>) -> Result<Algorithm<'_>> {
    let algorithm: Algorithm<'_> = serde_json::from_str(raw.json().get())
        .map_err(|e| Error::bad_json(format!("Invalid backup algorithm: {e}")))?;
    if !algorithm.auth_data.get().trim_start().starts_with('{') {
        return Err(Error::bad_json("auth_data must be an object"));
    }
    Ok(algorithm)
}

fn key_data(key: &KeyRow) -> Result<Raw<KeyBackupData>> {
    let data = SessionKey {
        first_message_index: to_uint(key.first_message_index),
        forwarded_count: to_uint(key.forwarded_count),
        is_verified: key.is_verified,
        session_data: serde_json::from_str(&key.session_data).map_err(stored)?,
    };
    Ok(Raw::from_json(serde_json::value::to_raw_value(&data).map_err(stored)?))
}

fn to_uint(n: i64) -> UInt {
    UInt::try_from(n).unwrap_or(UInt::MAX)
}

fn unknown_version() -> Error {
    Error::not_found("Unknown backup version")
}

fn stored(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("stored backup data: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(is_verified: bool, first_message_index: i64, forwarded_count: i64) -> KeyRow {
        KeyRow {
            room_id: "!r:x".to_owned(),
            session_id: "s".to_owned(),
            first_message_index,
            forwarded_count,
            is_verified,
            session_data: "{}".to_owned(),
        }
    }

    #[test]
    fn a_verified_key_beats_any_unverified_one() {
        assert!(replaces(&key(true, 9, 9), &key(false, 0, 0)));
        assert!(!replaces(&key(false, 0, 0), &key(true, 9, 9)));
    }

    #[test]
    fn then_the_lower_first_message_index_wins() {
        assert!(replaces(&key(false, 1, 5), &key(false, 2, 0)));
        assert!(!replaces(&key(false, 3, 0), &key(false, 2, 5)));
    }

    #[test]
    fn then_the_lower_forwarded_count_wins_and_an_equal_key_changes_nothing() {
        assert!(replaces(&key(true, 2, 0), &key(true, 2, 1)));
        assert!(!replaces(&key(true, 2, 1), &key(true, 2, 0)));
        assert!(!replaces(&key(true, 2, 1), &key(true, 2, 1)));
    }
}
