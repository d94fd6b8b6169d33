//! Media across servers (spec: Server-Server API › Content Repository): serving our media to other
//! servers, and fetching theirs (cached locally) for our clients.

use anyhow::Context;
use hearth_core::{
    Error,
    media::{download, remote, thumbnail},
    storage::media::Content,
};
use ruma::{
    ServerName,
    api::federation::authenticated_media::{
        self as federation_media, ContentMetadata, FileOrLocation, get_content::v1 as get_content,
        get_content_thumbnail::v1 as get_thumbnail,
    },
    http_headers::{ContentDisposition, ContentDispositionType},
};
use tokio::io::AsyncReadExt;

use crate::{FedResult, FedRuma, Federation};

/// `GET /_matrix/federation/v1/media/download/{mediaId}`: one of our media's bytes.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1mediadownloadmediaid>
pub async fn get_content(
    fed: Federation,
    req: FedRuma<get_content::Request>,
) -> FedResult<get_content::Response> {
    let content = download::local(fed.hs(), &req.body.media_id).await?;
    Ok(get_content::Response::new(ContentMetadata::new(), file(&fed, content).await?))
}

/// `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`: a thumbnail of one of our media.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1mediathumbnailmediaid>
pub async fn get_content_thumbnail(
    fed: Federation,
    req: FedRuma<get_thumbnail::Request>,
) -> FedResult<get_thumbnail::Response> {
    let r = req.body;
    let hs = fed.hs();
    let request = thumbnail::Request::parse(r.width, r.height, r.method.as_ref())?;
    let content = download::local(hs, &r.media_id).await?;
    let thumbnail = thumbnail::get(hs, hs.server_name(), &r.media_id, content, request).await?;
    Ok(get_thumbnail::Response::new(ContentMetadata::new(), file(&fed, thumbnail.content).await?))
}

/// The bytes of `content` with its type and name.
async fn file(fed: &Federation, content: Content) -> FedResult<FileOrLocation> {
    let mut opened = download::open(fed.hs(), content).await?;
    let mut bytes = Vec::new();
    opened.file.read_to_end(&mut bytes).await.context("reading stored media")?;
    let disposition =
        ContentDisposition::new(ContentDispositionType::Attachment).with_filename(opened.content.filename);
    Ok(FileOrLocation::File(federation_media::Content::new(bytes, opened.content.content_type, disposition)))
}

/// The content of `mxc://{server_name}/{media_id}`, another server's URI: from the local cache,
/// else fetched from that server (`/_matrix/federation/v1/media/download`) and cached.
pub async fn fetch(fed: &Federation, server_name: &ServerName, media_id: &str) -> Result<Content, Error> {
    let hs = fed.hs();
    if let Some(content) = remote::cached(hs, server_name, media_id).await? {
        return Ok(content);
    }
    if !hearth_core::media::is_valid_media_id(media_id) {
        return Err(Error::not_found("Unknown media"));
    }
    let answer = fed.client().send(server_name, get_content::Request::new(media_id.to_owned())).await?;
    let FileOrLocation::File(file) = answer.content else {
        return Err(Error::matrix(
            http::StatusCode::BAD_GATEWAY,
            ruma::api::error::ErrorKind::Unknown,
            format!("{server_name} redirected the download, which is not supported"),
        ));
    };
    let limit = hs.config().limits.max_upload_bytes;
    if u64::try_from(file.file.len()).unwrap_or(u64::MAX) > limit {
        return Err(Error::matrix(
            http::StatusCode::BAD_GATEWAY,
            ruma::api::error::ErrorKind::TooLarge,
            format!("The remote media is larger than {limit} bytes"),
        ));
    }
    let content_type = file.content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
    let filename = file.content_disposition.and_then(|d| d.filename);
    remote::store(hs, server_name, media_id, &file.file, content_type, filename).await
}
