//! The two kinds of error Hearth returns: a Matrix error chosen on purpose (spec errcode and HTTP
//! status), or an internal failure that is logged once and answered with an opaque 500.

use http::StatusCode;
use ruma::api::{client::uiaa::UiaaInfo, error::ErrorKind};

/// Core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error on its way to a client or a federating server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec-defined error: `{"errcode": kind, "error": message}` with `status`.
    #[error("{status} {kind:?}: {message}")]
    Matrix {
        /// HTTP status of the response.
        status: StatusCode,
        /// The `errcode` (and any extra fields it carries, like `retry_after_ms`).
        kind: ErrorKind,
        /// Human-readable explanation.
        message: String,
    },
    /// User-interactive authentication is (still) required: 401 with the flows and progress.
    #[error("user-interactive authentication required")]
    Uiaa(Box<UiaaInfo>),
    /// Anything else: a bug or an infrastructure failure. Clients see only `M_UNKNOWN`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// A Matrix error with an explicit status and kind.
    pub fn matrix(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Matrix { status, kind, message: message.into() }
    }

    /// 403 `M_FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::FORBIDDEN, ErrorKind::Forbidden, message)
    }

    /// 404 `M_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    /// 400 `M_BAD_JSON`: well-formed JSON that does not fit the endpoint.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::BadJson, message)
    }

    /// 400 `M_INVALID_PARAM`.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
    }

    /// 400 `M_MISSING_PARAM`.
    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::MissingParam, message)
    }

    /// 400 `M_UNKNOWN` for requests that are wrong in a way no other code describes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::matrix(StatusCode::BAD_REQUEST, ErrorKind::Unknown, message)
    }

    /// The `errcode` kind this error is answered with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Matrix { kind, .. } => kind.clone(),
            Error::Uiaa(_) => ErrorKind::Forbidden,
            Error::Internal(_) => ErrorKind::Unknown,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Matrix { status, .. } => *status,
            Error::Uiaa(_) => StatusCode::UNAUTHORIZED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(anyhow::Error::new(e).context("database"))
    }
}
