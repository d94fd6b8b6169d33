//! Server-side key backups (spec: Client-Server API › End-to-End Encryption › Server-side key
//! backups): versions, and the encrypted room keys stored in them.

use hearth_core::{
    Homeserver,
    e2ee::backup::{self, BackupInfo, KeysUpdate, Scope},
};
use ruma::api::client::backup::{
    RoomKeyBackup, add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session,
    create_backup_version, delete_backup_keys, delete_backup_keys_for_room, delete_backup_keys_for_session,
    delete_backup_version, get_backup_info, get_backup_keys, get_backup_keys_for_room,
    get_backup_keys_for_session, get_latest_backup_info, update_backup_version,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/room_keys/version`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3room_keysversion>
pub async fn create_version(
    hs: Homeserver,
    req: Ruma<create_backup_version::v3::Request>,
) -> Result<create_backup_version::v3::Response> {
    let version = backup::create_version(&hs, &req.auth.user_id, &req.body.algorithm).await?;
    Ok(create_backup_version::v3::Response::new(version))
}

/// `GET /_matrix/client/v3/room_keys/version`: 404 `M_NOT_FOUND` while no backup exists.
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keysversion>
pub async fn latest_version(
    hs: Homeserver,
    req: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<get_latest_backup_info::v3::Response> {
    let BackupInfo { version, algorithm, count, etag } = backup::info(&hs, &req.auth.user_id, None).await?;
    Ok(get_latest_backup_info::v3::Response::new(algorithm, count, etag, version))
}

/// `GET /_matrix/client/v3/room_keys/version/{version}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keysversionversion>
pub async fn get_version(
    hs: Homeserver,
    req: Ruma<get_backup_info::v3::Request>,
) -> Result<get_backup_info::v3::Response> {
    let info = backup::info(&hs, &req.auth.user_id, Some(&req.body.version)).await?;
    Ok(get_backup_info::v3::Response::new(info.algorithm, info.count, info.etag, info.version))
}

/// `PUT /_matrix/client/v3/room_keys/version/{version}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3room_keysversionversion>
pub async fn update_version(
    hs: Homeserver,
    req: Ruma<update_backup_version::v3::Request>,
) -> Result<update_backup_version::v3::Response> {
    backup::update_version(&hs, &req.auth.user_id, &req.body.version, &req.body.algorithm).await?;
    Ok(update_backup_version::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/room_keys/version/{version}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3room_keysversionversion>
pub async fn delete_version(
    hs: Homeserver,
    req: Ruma<delete_backup_version::v3::Request>,
) -> Result<delete_backup_version::v3::Response> {
    backup::delete_version(&hs, &req.auth.user_id, &req.body.version).await?;
    Ok(delete_backup_version::v3::Response::new())
}

/// `PUT /_matrix/client/v3/room_keys/keys`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3room_keyskeys>
pub async fn put_keys(
    hs: Homeserver,
    req: Ruma<add_backup_keys::v3::Request>,
) -> Result<add_backup_keys::v3::Response> {
    let body = &req.body;
    let keys: Vec<_> = body
        .rooms
        .iter()
        .flat_map(|(room_id, room)| {
            room.sessions.iter().map(move |(session, key)| (&**room_id, &**session, key))
        })
        .collect();
    let KeysUpdate { etag, count } = backup::put_keys(&hs, &req.auth.user_id, &body.version, &keys).await?;
    Ok(add_backup_keys::v3::Response::new(etag, count))
}

/// `PUT /_matrix/client/v3/room_keys/keys/{roomId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3room_keyskeysroomid>
pub async fn put_room_keys(
    hs: Homeserver,
    req: Ruma<add_backup_keys_for_room::v3::Request>,
) -> Result<add_backup_keys_for_room::v3::Response> {
    let body = &req.body;
    let keys: Vec<_> = body.sessions.iter().map(|(session, key)| (&*body.room_id, &**session, key)).collect();
    let KeysUpdate { etag, count } = backup::put_keys(&hs, &req.auth.user_id, &body.version, &keys).await?;
    Ok(add_backup_keys_for_room::v3::Response::new(etag, count))
}

/// `PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3room_keyskeysroomidsessionid>
pub async fn put_session_key(
    hs: Homeserver,
    req: Ruma<add_backup_keys_for_session::v3::Request>,
) -> Result<add_backup_keys_for_session::v3::Response> {
    let body = &req.body;
    let keys = [(&*body.room_id, body.session_id.as_str(), &body.session_data)];
    let KeysUpdate { etag, count } = backup::put_keys(&hs, &req.auth.user_id, &body.version, &keys).await?;
    Ok(add_backup_keys_for_session::v3::Response::new(etag, count))
}

/// `GET /_matrix/client/v3/room_keys/keys`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keyskeys>
pub async fn get_keys(
    hs: Homeserver,
    req: Ruma<get_backup_keys::v3::Request>,
) -> Result<get_backup_keys::v3::Response> {
    let rooms = backup::get_keys(&hs, &req.auth.user_id, &req.body.version, Scope::All).await?;
    let rooms =
        rooms.into_iter().map(|(room_id, sessions)| (room_id, RoomKeyBackup::new(sessions))).collect();
    Ok(get_backup_keys::v3::Response::new(rooms))
}

/// `GET /_matrix/client/v3/room_keys/keys/{roomId}`: `{"sessions": {}}` for a room without keys.
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keyskeysroomid>
pub async fn get_room_keys(
    hs: Homeserver,
    req: Ruma<get_backup_keys_for_room::v3::Request>,
) -> Result<get_backup_keys_for_room::v3::Response> {
    let body = &req.body;
    let mut rooms =
        backup::get_keys(&hs, &req.auth.user_id, &body.version, Scope::Room(&body.room_id)).await?;
    let sessions = rooms.remove(&body.room_id).unwrap_or_default();
    Ok(get_backup_keys_for_room::v3::Response::new(sessions))
}

/// `GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3room_keyskeysroomidsessionid>
pub async fn get_session_key(
    hs: Homeserver,
    req: Ruma<get_backup_keys_for_session::v3::Request>,
) -> Result<get_backup_keys_for_session::v3::Response> {
    let body = &req.body;
    let scope = Scope::Session(&body.room_id, &body.session_id);
    let rooms = backup::get_keys(&hs, &req.auth.user_id, &body.version, scope).await?;
    let key = rooms.into_values().flat_map(|sessions| sessions.into_values()).next();
    let key = key.ok_or_else(|| hearth_core::Error::not_found("No key for this session"))?;
    Ok(get_backup_keys_for_session::v3::Response::new(key))
}

/// `DELETE /_matrix/client/v3/room_keys/keys`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3room_keyskeys>
pub async fn delete_keys(
    hs: Homeserver,
    req: Ruma<delete_backup_keys::v3::Request>,
) -> Result<delete_backup_keys::v3::Response> {
    let KeysUpdate { etag, count } =
        backup::delete_keys(&hs, &req.auth.user_id, &req.body.version, Scope::All).await?;
    Ok(delete_backup_keys::v3::Response::new(etag, count))
}

/// `DELETE /_matrix/client/v3/room_keys/keys/{roomId}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3room_keyskeysroomid>
pub async fn delete_room_keys(
    hs: Homeserver,
    req: Ruma<delete_backup_keys_for_room::v3::Request>,
) -> Result<delete_backup_keys_for_room::v3::Response> {
    let body = &req.body;
    let scope = Scope::Room(&body.room_id);
    let KeysUpdate { etag, count } =
        backup::delete_keys(&hs, &req.auth.user_id, &body.version, scope).await?;
    Ok(delete_backup_keys_for_room::v3::Response::new(etag, count))
}

/// `DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3room_keyskeysroomidsessionid>
pub async fn delete_session_key(
    hs: Homeserver,
    req: Ruma<delete_backup_keys_for_session::v3::Request>,
) -> Result<delete_backup_keys_for_session::v3::Response> {
    let body = &req.body;
    let scope = Scope::Session(&body.room_id, &body.session_id);
    let KeysUpdate { etag, count } =
        backup::delete_keys(&hs, &req.auth.user_id, &body.version, scope).await?;
    Ok(delete_backup_keys_for_session::v3::Response::new(etag, count))
}
