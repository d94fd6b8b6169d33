//! Sending media: the file streamed from disk (never read into memory whole) with the headers
//! the spec asks for: `Content-Type`, a safe `Content-Disposition`, the recommended
//! `Content-Security-Policy`, `Cross-Origin-Resource-Policy: cross-origin` (Matrix 1.4) and
//! `X-Content-Type-Options: nosniff`, so a browser never second-guesses the type.

use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use hearth_core::media::download::Download;
use tokio_util::io::ReaderStream;

use super::disposition::content_disposition;

/// The Content-Security-Policy the spec recommends for media.
const CSP: &str = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
                   style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

/// Media on its way out.
pub struct MediaResponse {
    download: Download,
    /// A name from the URL, which overrides the one given at upload.
    filename: Option<String>,
}

impl MediaResponse {
    /// Serves `download` under its own name, or `filename` when the URL gives one.
    pub fn new(download: Download, filename: Option<String>) -> MediaResponse {
        MediaResponse { download, filename }
    }
}

impl IntoResponse for MediaResponse {
    fn into_response(self) -> Response {
        let content = self.download.content;
        let filename = self.filename.or(content.filename);
        let content_type = HeaderValue::from_str(&content.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let disposition =
            HeaderValue::from_str(&content_disposition(&content.content_type, filename.as_deref()))
                .unwrap_or(HeaderValue::from_static("attachment"));
        let headers = [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, HeaderValue::from(content.size)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("cross-origin"),
            ),
        ];
        (headers, Body::from_stream(ReaderStream::new(self.download.file))).into_response()
    }
}
