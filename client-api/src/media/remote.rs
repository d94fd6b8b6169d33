//! Media of other servers, fetched through federation (`GET
//! /_matrix/federation/v1/media/download/{mediaId}`) and cached in the local store, so the
//! download and thumbnail handlers serve it like local media.

use hearth_core::storage::media::Content;
use hearth_federation::Federation;
use ruma::ServerName;

use crate::error::Result;

/// The content of `mxc://{server_name}/{media_id}`, a URI of another server.
pub async fn content(fed: &Federation, server_name: &ServerName, media_id: &str) -> Result<Content> {
    Ok(hearth_federation::media::fetch(fed, server_name, media_id).await?)
}
