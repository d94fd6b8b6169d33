//! How errors leave the client API: every one is a Matrix error body with the spec's errcode and
//! status; internal failures are logged once here and answered with an opaque 500.

use axum::{
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use hearth_core::Error;
use ruma::api::{
    OutgoingResponseExt,
    error::{ErrorBody, ErrorKind, StandardErrorBody},
};

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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self.0 {
            Error::Matrix { status, kind, message } => (status, kind, message),
            Error::Uiaa(info) => return (StatusCode::UNAUTHORIZED, axum::Json(info)).into_response(),
            Error::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Unknown, "Internal server error".to_owned())
            }
        };
        let error =
            ruma::api::error::Error::new(status, ErrorBody::Standard(StandardErrorBody::new(kind, message)));
        match error.try_into_http_response::<BytesMut>() {
            Ok(response) => response.map(|body| Body::from(body.freeze())).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "serialising an error response");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// Fallback for paths no route matches.
pub async fn unrecognized() -> ApiError {
    ApiError::unrecognized()
}

/// Fallback for known paths called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
