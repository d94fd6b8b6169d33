//! Uploads (spec: `POST /_matrix/media/v3/upload`) and the asynchronous pair (`POST
//! /_matrix/media/v1/create` reserves a URI, `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`
//! gives it content). The body is streamed to the store, never held in memory whole, and
//! refused as soon as it passes the upload limit (413 `M_TOO_LARGE`) or the uploader's quota
//! (403 `M_FORBIDDEN`).

use std::fmt::Display;

use anyhow::Context;
use futures::{Stream, StreamExt};
use http::StatusCode;
use rand::{Rng, distributions::Alphanumeric};
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedMxcUri, ServerName, UInt, UserId,
    api::error::{ErrorKind, LimitExceededErrorData},
};

use crate::{
    Error, Homeserver, Result,
    storage::media::{self, Content},
    time::now_ms,
};

/// How long a reserved URI waits for its content: the spec's recommended 24 hours.
const UNUSED_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

/// What the client said about the bytes it sends.
#[derive(Clone, Debug, Default)]
pub struct UploadInfo {
    /// The `Content-Type` header (`application/octet-stream` when missing).
    pub content_type: Option<String>,
    /// The `filename` query parameter.
    pub filename: Option<String>,
    /// The `Content-Length` header, which lets an oversized upload be refused before any byte
    /// is read.
    pub length: Option<u64>,
}

/// Stores an upload under a new URI of this server.
pub async fn upload<B, E>(
    hs: &Homeserver,
    uploader: &UserId,
    info: UploadInfo,
    body: impl Stream<Item = Result<B, E>> + Unpin,
) -> Result<OwnedMxcUri>
where
    B: AsRef<[u8]>,
    E: Display,
{
    let content = receive(hs, uploader, info, body).await?;
    let media_id = new_media_id();
    let mut tx = hs.db().begin().await.context("starting a media upload transaction")?;
    check_quota(hs, &mut tx, uploader, content.size).await?;
    media::insert(&mut *tx, hs.server_name(), &media_id, Some(uploader), &content, now_ms())
        .await
        .context("storing media metadata")?;
    tx.commit().await.context("committing a media upload")?;
    Ok(mxc_uri(hs.server_name(), &media_id))
}

/// Reserves a URI for a later [`upload_to`]; returns it with the time it expires unused.
pub async fn create(hs: &Homeserver, uploader: &UserId) -> Result<(OwnedMxcUri, MilliSecondsSinceUnixEpoch)> {
    let now = now_ms();
    let media_id = new_media_id();
    let mut tx = hs.db().begin().await.context("starting a media reservation transaction")?;
    let pending = media::pending_count(&mut *tx, uploader, now).await.context("counting pending uploads")?;
    if pending >= u64::from(hs.config().media.max_pending_uploads) {
        return Err(Error::matrix(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::LimitExceeded(LimitExceededErrorData::new()),
            "Too many pending uploads: upload to the URIs already created first",
        ));
    }
    let expires = now + UNUSED_EXPIRY_MS;
    media::reserve(&mut *tx, hs.server_name(), &media_id, uploader, now, expires)
        .await
        .context("reserving a media ID")?;
    tx.commit().await.context("committing a media reservation")?;
    let expires = MilliSecondsSinceUnixEpoch(UInt::try_from(expires).unwrap_or(UInt::MAX));
    Ok((mxc_uri(hs.server_name(), &media_id), expires))
}

/// Gives a URI reserved with [`create`] its content. Only its creator may, only once, and only
/// before it expired.
pub async fn upload_to<B, E>(
    hs: &Homeserver,
    uploader: &UserId,
    server_name: &ServerName,
    media_id: &str,
    info: UploadInfo,
    body: impl Stream<Item = Result<B, E>> + Unpin,
) -> Result<()>
where
    B: AsRef<[u8]>,
    E: Display,
{
    let unknown = || Error::not_found("Unknown media ID: create it with POST /_matrix/media/v1/create");
    if server_name != hs.server_name() || !super::is_valid_media_id(media_id) {
        return Err(unknown());
    }
    let row = media::get(hs.db().pool(), server_name, media_id).await.context("loading media")?;
    let row = row.ok_or_else(unknown)?;
    if row.uploader.as_deref() != Some(uploader.as_str()) {
        return Err(Error::forbidden("Only the user who created this media ID may upload to it"));
    }
    if row.content.is_some() {
        return Err(cannot_overwrite());
    }
    if row.unused_expires_at.is_some_and(|expires| expires <= now_ms()) {
        return Err(unknown());
    }
    let content = receive(hs, uploader, info, body).await?;
    let mut tx = hs.db().begin().await.context("starting a media upload transaction")?;
    check_quota(hs, &mut tx, uploader, content.size).await?;
    // A concurrent upload to the same URI may have won.
    if !media::fill(&mut *tx, server_name, media_id, &content).await.context("storing media metadata")? {
        return Err(cannot_overwrite());
    }
    tx.commit().await.context("committing a media upload")?;
    Ok(())
}

fn cannot_overwrite() -> Error {
    Error::matrix(StatusCode::CONFLICT, ErrorKind::CannotOverwriteMedia, "This media ID already has content")
}

/// Streams the body into the store, enforcing the upload limit and the quota as it goes.
async fn receive<B, E>(
    hs: &Homeserver,
    uploader: &UserId,
    info: UploadInfo,
    mut body: impl Stream<Item = Result<B, E>> + Unpin,
) -> Result<Content>
where
    B: AsRef<[u8]>,
    E: Display,
{
    let max = hs.config().limits.max_upload_bytes;
    let quota = hs.config().media.user_quota_bytes;
    let quota_left = if quota == 0 {
        None
    } else {
        let used = media::bytes_used(hs.db().pool(), uploader).await.context("reading media quota")?;
        Some(quota.saturating_sub(used))
    };
    let check = |size: u64| -> Result<()> {
        if size > max {
            return Err(too_large(max));
        }
        match quota_left {
            Some(left) if size > left => Err(over_quota()),
            _ => Ok(()),
        }
    };
    if let Some(length) = info.length {
        check(length)?;
    }
    let store = hs.media().store();
    let mut file = store.incoming().await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::bad_request(format!("Reading the upload failed: {e}")))?;
        let chunk = chunk.as_ref();
        check(file.size() + chunk.len() as u64)?;
        file.write(chunk).await?;
    }
    let stored = file.persist(store).await?;
    Ok(Content {
        content_type: info.content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
        filename: info.filename,
        size: stored.size,
        sha256: stored.sha256,
    })
}

/// Checks the quota again inside the writing transaction, against what concurrent uploads of
/// the same user committed meanwhile.
async fn check_quota(
    hs: &Homeserver,
    tx: &mut crate::storage::WriteTx,
    uploader: &UserId,
    size: u64,
) -> Result<()> {
    let quota = hs.config().media.user_quota_bytes;
    if quota == 0 {
        return Ok(());
    }
    let used = media::bytes_used(&mut **tx, uploader).await.context("reading media quota")?;
    if used.saturating_add(size) > quota { Err(over_quota()) } else { Ok(()) }
}

fn too_large(max: u64) -> Error {
    Error::matrix(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooLarge,
        format!("Uploads are limited to {max} bytes"),
    )
}

fn over_quota() -> Error {
    Error::forbidden("This upload would exceed your media quota")
}

/// A fresh media ID: 24 random alphanumerics (142 bits), unguessable.
fn new_media_id() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect()
}

fn mxc_uri(server_name: &ServerName, media_id: &str) -> OwnedMxcUri {
    OwnedMxcUri::from(format!("mxc://{server_name}/{media_id}"))
}
