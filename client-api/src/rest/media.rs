//! Media: uploading a file, as `POST /_matrix/media/v3/upload` does.

use axum::{
    Json,
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::header::CONTENT_TYPE,
};
use hearth_core::{Homeserver, media::upload as core_upload};
use ruma::api::client::media::create_content;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Caller, QueryParams};
use crate::{error::Result, media::upload::upload_info, ruma_wrapper::rate_limit};

/// The query of `POST /api/v1/media/upload`.
#[derive(Debug, Deserialize)]
pub struct UploadParams {
    /// The file's name, kept for downloads.
    filename: Option<String>,
}

/// `POST /api/v1/media/upload`: stores the body (streamed, up to `limits.max_upload_bytes` and
/// the uploader's quota) under a new `mxc://` URI, with the request's `Content-Type`.
pub async fn upload(State(hs): State<Homeserver>, request: Request) -> Result<Json<Value>> {
    let (mut parts, body) = request.into_parts();
    let Caller(user) = Caller::from_request_parts(&mut parts, &hs).await?;
    let QueryParams(params) = QueryParams::<UploadParams>::from_request_parts(&mut parts, &hs).await?;
    rate_limit::<create_content::v3::Request>(&hs, &user)?;
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let info = upload_info(content_type, params.filename, &body);
    let content_uri = core_upload::upload(&hs, &user.user_id, info, Body::into_data_stream(body)).await?;
    Ok(Json(json!({ "content_uri": content_uri })))
}
