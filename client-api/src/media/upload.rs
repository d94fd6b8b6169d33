//! Uploads: `POST /_matrix/media/v3/upload`, and the asynchronous pair `POST
//! /_matrix/media/v1/create` + `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`. Bodies
//! stream to the store ([`RumaStreamed`]), past the JSON body limit, up to
//! `limits.max_upload_bytes`.

use axum::body::{Body, HttpBody};
use hearth_core::{
    Homeserver,
    media::upload::{self, UploadInfo},
};
use ruma::api::client::media::{create_content, create_content_async, create_mxc_uri};

use crate::{
    error::Result,
    ruma_wrapper::{Ruma, RumaResponse, RumaStreamed},
};

/// `POST /_matrix/media/v3/upload`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixmediav3upload>
pub async fn upload(
    hs: Homeserver,
    req: RumaStreamed<create_content::v3::Request>,
) -> Result<RumaResponse<create_content::v3::Response>> {
    let RumaStreamed { request: Ruma { body: request, auth: user, .. }, body } = req;
    let info = upload_info(request.content_type, request.filename, &body);
    let content_uri = upload::upload(&hs, &user.user_id, info, body.into_data_stream()).await?;
    Ok(RumaResponse(create_content::v3::Response::new(content_uri)))
}

/// `POST /_matrix/media/v1/create`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixmediav1create>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_mxc_uri::v1::Request>,
) -> Result<create_mxc_uri::v1::Response> {
    let (content_uri, expires) = upload::create(&hs, &req.auth.user_id).await?;
    let mut response = create_mxc_uri::v1::Response::new(content_uri);
    response.unused_expires_at = Some(expires);
    Ok(response)
}

/// `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixmediav3uploadservernamemediaid>
pub async fn upload_to(
    hs: Homeserver,
    req: RumaStreamed<create_content_async::v3::Request>,
) -> Result<axum::Json<serde_json::Value>> {
    let RumaStreamed { request: Ruma { body: request, auth: user, .. }, body } = req;
    let info = upload_info(request.content_type, request.filename, &body);
    let stream = body.into_data_stream();
    upload::upload_to(&hs, &user.user_id, &request.server_name, &request.media_id, info, stream).await?;
    // ruma's response type for this endpoint has no constructor; the spec's answer is `{}`.
    Ok(axum::Json(serde_json::json!({})))
}

/// What the request says about its body; the length is the `Content-Length`, when sent.
pub(crate) fn upload_info(content_type: Option<String>, filename: Option<String>, body: &Body) -> UploadInfo {
    UploadInfo { content_type, filename, length: body.size_hint().exact() }
}
