//! Other servers' media cached here: the `media` row under the other server's name (no uploader)
//! and the bytes in the same content-addressed store, so downloads and thumbnails serve it like
//! local media. Fetching it is federation's job.

use anyhow::Context;
use ruma::ServerName;

use crate::{
    Homeserver, Result,
    storage::media::{self, Content},
    time::now_ms,
};

/// The cached content of `mxc://{server_name}/{media_id}`, if it was fetched before.
pub async fn cached(hs: &Homeserver, server_name: &ServerName, media_id: &str) -> Result<Option<Content>> {
    if !super::is_valid_media_id(media_id) {
        return Ok(None);
    }
    let row = media::get(hs.db().pool(), server_name, media_id).await.context("loading cached media")?;
    Ok(row.and_then(|row| row.content))
}

/// Caches fetched bytes as `mxc://{server_name}/{media_id}`. When another request cached the
/// same URI meanwhile, its row wins (the bytes are the same file either way).
pub async fn store(
    hs: &Homeserver,
    server_name: &ServerName,
    media_id: &str,
    bytes: &[u8],
    content_type: String,
    filename: Option<String>,
) -> Result<Content> {
    let stored = hs.media().store().put(bytes).await?;
    let content = Content { content_type, filename, size: stored.size, sha256: stored.sha256 };
    let inserted = media::insert(hs.db().pool(), server_name, media_id, None, &content, now_ms()).await;
    if inserted.is_err()
        && let Some(existing) = cached(hs, server_name, media_id).await?
    {
        return Ok(existing);
    }
    inserted.context("caching remote media")?;
    Ok(content)
}
