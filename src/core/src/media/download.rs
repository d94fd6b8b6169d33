//! Reading local media back (spec: `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`
//! and the thumbnail endpoint): which content a URI of this server holds, and its file.

use anyhow::Context;
use http::StatusCode;
use ruma::api::error::ErrorKind;

use crate::{
    Error, Homeserver, Result,
    storage::media::{self, Content},
    time::now_ms,
};

/// Content ready to be sent: what it is, and the open file.
#[derive(Debug)]
pub struct Download {
    /// Type, name, size and hash.
    pub content: Content,
    /// The stored file, positioned at its start.
    pub file: tokio::fs::File,
}

/// The content of a URI of this server: 404 `M_NOT_FOUND` if there is none (or its reservation
/// expired), 504 `M_NOT_YET_UPLOADED` while reserved but not uploaded yet. (The spec lets the
/// server answer before the client's `timeout_ms`: Hearth answers at once.)
pub async fn local(hs: &Homeserver, media_id: &str) -> Result<Content> {
    let unknown = || Error::not_found("Unknown media");
    if !super::is_valid_media_id(media_id) {
        return Err(unknown());
    }
    let row = media::get(hs.db().pool(), hs.server_name(), media_id).await.context("loading media")?;
    let row = row.ok_or_else(unknown)?;
    match row.content {
        Some(content) => Ok(content),
        None if row.unused_expires_at.is_some_and(|expires| expires <= now_ms()) => Err(unknown()),
        None => Err(Error::matrix(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::NotYetUploaded,
            "The content has not been uploaded yet",
        )),
    }
}

/// Opens the file of `content`.
pub async fn open(hs: &Homeserver, content: Content) -> Result<Download> {
    let file = hs.media().store().open_file(&content.sha256).await?;
    Ok(Download { content, file })
}
