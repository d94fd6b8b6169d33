//! How errors leave the client API: every one is a Matrix error body with the spec's errcode and
//! status; internal failures are logged once here and answered with an opaque 500.

use axum::{
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hearth_core::Error;
use ruma::api::error::ErrorKind;

/// Result of a client API handler.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A core error on its way out through HTTP.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl ApiError {
    /// A Matrix error with the given status, kind and message.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError(Error::matrix(status, kind, message))
    }

    /// 404 `M_UNRECOGNIZED`: no such endpoint.
    pub fn unrecognized() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::Unrecognized, "Unrecognized request")
    }

    /// 405 `M_UNRECOGNIZED`: the endpoint exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, ErrorKind::Unrecognized, "Method not allowed")
    }

    /// 500: a handler panicked.
    pub fn panicked() -> Self {
        ApiError(Error::Internal(anyhow::anyhow!("handler panicked")))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        hearth_core::http_api::error_response(self.0).map(Body::from).into_response()
    }
}
