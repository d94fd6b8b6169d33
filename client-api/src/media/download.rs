//! Downloads and thumbnails: the authenticated `/_matrix/client/v1/media/*` endpoints, and the
//! deprecated unauthenticated `/_matrix/media/v3/*` ones, which answer 404 `M_NOT_FOUND` unless
//! `media.legacy_unauthenticated` is on (the spec's "freeze", Matrix 1.12).

use hearth_core::{
    Error, Homeserver,
    media::{
        download::{self, Download},
        thumbnail,
    },
    storage::media::Content,
};
use ruma::{
    ServerName, UInt,
    api::client::{authenticated_media, media},
};

use hearth_federation::Federation;

use super::{remote, serve::MediaResponse};
use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid>
pub async fn download(
    fed: Federation,
    req: Ruma<authenticated_media::get_content::v1::Request>,
) -> Result<MediaResponse> {
    serve_download(&fed, &req.body.server_name, &req.body.media_id, None).await
}

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename>
pub async fn download_as(
    fed: Federation,
    req: Ruma<authenticated_media::get_content_as_filename::v1::Request>,
) -> Result<MediaResponse> {
    let request = req.body;
    serve_download(&fed, &request.server_name, &request.media_id, Some(request.filename)).await
}

/// `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid>
pub async fn thumbnail(
    fed: Federation,
    req: Ruma<authenticated_media::get_content_thumbnail::v1::Request>,
) -> Result<MediaResponse> {
    let r = req.body;
    serve_thumbnail(&fed, &r.server_name, &r.media_id, r.width, r.height, r.method.as_ref()).await
}

/// `GET /_matrix/media/v3/download/{serverName}/{mediaId}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3downloadservernamemediaid>
#[allow(deprecated)]
pub async fn legacy_download(
    fed: Federation,
    req: Ruma<media::get_content::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(fed.hs())?;
    serve_download(&fed, &req.body.server_name, &req.body.media_id, None).await
}

/// `GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3downloadservernamemediaidfilename>
#[allow(deprecated)]
pub async fn legacy_download_as(
    fed: Federation,
    req: Ruma<media::get_content_as_filename::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(fed.hs())?;
    let request = req.body;
    serve_download(&fed, &request.server_name, &request.media_id, Some(request.filename)).await
}

/// `GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}` (deprecated)
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixmediav3thumbnailservernamemediaid>
#[allow(deprecated)]
pub async fn legacy_thumbnail(
    fed: Federation,
    req: Ruma<media::get_content_thumbnail::v3::Request>,
) -> Result<MediaResponse> {
    legacy_allowed(fed.hs())?;
    let r = req.body;
    serve_thumbnail(&fed, &r.server_name, &r.media_id, r.width, r.height, r.method.as_ref()).await
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
async fn content(fed: &Federation, server_name: &ServerName, media_id: &str) -> Result<Content> {
    if server_name == fed.hs().server_name() {
        Ok(download::local(fed.hs(), media_id).await?)
    } else {
        remote::content(fed, server_name, media_id).await
    }
}

async fn serve_download(
    fed: &Federation,
    server_name: &ServerName,
    media_id: &str,
    filename: Option<String>,
) -> Result<MediaResponse> {
    let content = content(fed, server_name, media_id).await?;
    let download: Download = download::open(fed.hs(), content).await?;
    Ok(MediaResponse::new(download, filename))
}

async fn serve_thumbnail(
    fed: &Federation,
    server_name: &ServerName,
    media_id: &str,
    width: UInt,
    height: UInt,
    method: Option<&ruma::media::Method>,
) -> Result<MediaResponse> {
    let request = thumbnail::Request::parse(width, height, method)?;
    let content = content(fed, server_name, media_id).await?;
    let download = thumbnail::get(fed.hs(), server_name, media_id, content, request).await?;
    Ok(MediaResponse::new(download, None))
}
