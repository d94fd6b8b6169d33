//! Media of other servers: the seam where federation plugs in.
//!
//! Fetching remote media goes over the Server-Server API (`GET
//! /_matrix/federation/v1/media/download/{mediaId}`), which Hearth does not speak yet, so every
//! `mxc://` URI of another server is 404 `M_NOT_FOUND` for now. When federation lands, this
//! function fetches the bytes through the federation client, stores them with
//! `hearth_core::media` (as cached remote media, no uploader) and returns their content; the
//! download and thumbnail handlers need no change.

use hearth_core::{Error, Homeserver, storage::media::Content};
use ruma::ServerName;

use crate::error::Result;

/// The content of `mxc://{server_name}/{media_id}`, a URI of another server.
pub async fn content(_hs: &Homeserver, server_name: &ServerName, _media_id: &str) -> Result<Content> {
    Err(Error::not_found(format!("Media of other servers ({server_name}) cannot be fetched yet")).into())
}
