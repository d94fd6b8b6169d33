//! Downloads and thumbnails: the authenticated `/_matrix/client/v1/media/*` endpoints, and the
//! deprecated unauthenticated `/_matrix/media/v3/*` ones, which answer 404 `M_NOT_FOUND` unless
//! `media.legacy_unauthenticated` is on (the spec's "freeze", Matrix 1.12).

use hearth_core::{
    Error, Homeserver,
    media::{
        download::{self, Download},
        sizing::Method,
        thumbnail,
    },
    storage::media::Content,
};
use ruma::{
    ServerName, UInt,
    api::client::{authenticated_media, media},
};

use super::{remote, serve::MediaResponse};
use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid>
pub async fn download(
    hs: Homeserver,
    req: Ruma<authenticated_media::get_content::v1::Request>,
) -> Result<MediaResponse> {
    serve_download(&hs, &req.body.server_name, &req.body.media_id, None).await
}

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename>
pub async fn download_as(
    hs: Homeserver,
    req: Ruma<authenticated_media::get_content_as_filename::v1::Request>,
) -> Result<MediaResponse> {
    let request = req.body;
    serve_download(&hs, &request.server_name, &request.media_id, Some(request.filename)).await
}

/// `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid>
pub async fn thumbnail(
    hs: Homeserver,
    req: Ruma<authenticated_media::get_content_thumbnail::v1::Request>,
) -> Result<MediaResponse> {
    let r = req.body;
    serve_thumbnail(&hs, &r.server_name, &r.media_id, r.width, r.height, r.method.as_ref()).await
}

/// `GET /_matrix/media/v3/download/{serverName}/{mediaId}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3downloadservernamemediaid>
#[allow(deprecated)]
pub async fn legacy_download(
    hs: Homeserver,
    req: Ruma<media::get_content::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(&hs)?;
    serve_download(&hs, &req.body.server_name, &req.body.media_id, None).await
}

/// `GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3downloadservernamemediaidfilename>
#[allow(deprecated)]
pub async fn legacy_download_as(
    hs: Homeserver,
    req: Ruma<media::get_content_as_filename::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(&hs)?;
    let request = req.body;
    serve_download(&hs, &request.server_name, &request.media_id, Some(request.filename)).await
}

/// `GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3thumbnailservernamemediaid>
#[allow(deprecated)]
pub async fn legacy_thumbnail(
    hs: Homeserver,
    req: Ruma<media::get_content_thumbnail::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(&hs)?;
    let r = req.body;
    serve_thumbnail(&hs, &r.server_name, &r.media_id, r.width, r.height, r.method.as_ref()).await
}

/// The freeze: unauthenticated media endpoints answer as if nothing were there.
fn legacy_allowed(hs: &Homeserver) -> Result<()> {
    if hs.config().media.legacy_unauthenticated {
        Ok(())
    } else {
        Err(Error::not_found("Unauthenticated media is disabled: use /_matrix/client/v1/media").into())
    }
}

/// The content of any `mxc://` URI: ours from the store, others' through federation.
async fn content(hs: &Homeserver, server_name: &ServerName, media_id: &str) -> Result<Content> {
    if server_name == hs.server_name() {
        Ok(download::local(hs, media_id).await?)
    } else {
        remote::content(hs, server_name, media_id).await
    }
}

async fn serve_download(
    hs: &Homeserver,
    server_name: &ServerName,
    media_id: &str,
    filename: Option<String>,
) -> Result<MediaResponse> {
    let content = content(hs, server_name, media_id).await?;
    let download: Download = download::open(hs, content).await?;
    Ok(MediaResponse::new(download, filename))
}

async fn serve_thumbnail(
    hs: &Homeserver,
    server_name: &ServerName,
    media_id: &str,
    width: UInt,
    height: UInt,
    method: Option<&ruma::media::Method>,
) -> Result<MediaResponse> {
    let method = match method {
        None | Some(ruma::media::Method::Scale) => Method::Scale,
        Some(ruma::media::Method::Crop) => Method::Crop,
        Some(other) => {
            return Err(Error::invalid_param(format!("Unknown thumbnail method {:?}", other.as_str())).into());
        }
    };
    let side = |n: UInt| u32::try_from(u64::from(n)).unwrap_or(u32::MAX);
    let request = thumbnail::Request { width: side(width), height: side(height), method };
    let content = content(hs, server_name, media_id).await?;
    let download = thumbnail::get(hs, server_name, media_id, content, request).await?;
    Ok(MediaResponse::new(download, None))
}
