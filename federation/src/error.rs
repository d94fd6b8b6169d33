//! Federation's errors: [`FedError`] for requests we send, [`KeyError`] for signing keys we could
//! not obtain or signatures that do not verify, and [`FedApiError`] for answering requests other
//! servers send us (the spec's error body, as on the client API).

use axum::{
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use hearth_core::Error;
use ruma::{OwnedServerName, api::error::ErrorKind};

/// Result of a federation handler.
pub type FedResult<T, E = FedApiError> = std::result::Result<T, E>;

/// A core error on its way out to another server.
#[derive(Debug)]
pub struct FedApiError(pub Error);

impl<E: Into<Error>> From<E> for FedApiError {
    fn from(e: E) -> Self {
        FedApiError(e.into())
    }
}

impl FedApiError {
    /// 401 `M_UNAUTHORIZED`: the request's X-Matrix signature is missing or does not verify.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        FedApiError(Error::matrix(StatusCode::UNAUTHORIZED, ErrorKind::Unauthorized, message))
    }
}

impl IntoResponse for FedApiError {
    fn into_response(self) -> Response {
        hearth_core::http_api::error_response(self.0).map(Body::from).into_response()
    }
}

/// Why a request to another server failed.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// The destination could not be resolved or reached, or the connection broke: worth trying
    /// again later (with backoff).
    #[error("{destination} is unreachable: {message}")]
    Transport {
        /// The server we tried to reach.
        destination: OwnedServerName,
        /// What went wrong.
        message: String,
    },
    /// The destination answered with an error.
    #[error("{destination} answered {status} {kind:?}: {message}")]
    Remote {
        /// The server that answered.
        destination: OwnedServerName,
        /// The HTTP status of its answer.
        status: StatusCode,
        /// Its `errcode` (`M_UNKNOWN` when the body was not a Matrix error).
        kind: ErrorKind,
        /// Its `error` message.
        message: String,
    },
    /// Federation is off on this server: nothing was sent.
    #[error("federation is disabled on this server (request to {destination})")]
    Disabled {
        /// The server we would have asked.
        destination: OwnedServerName,
    },
    /// The request was not sent (the destination is refused, the request could not be built)
    /// or the answer did not fit the endpoint. Trying again will not help.
    #[error("request to {destination} failed: {message}")]
    Invalid {
        /// The server concerned.
        destination: OwnedServerName,
        /// What went wrong.
        message: String,
    },
}

impl FedError {
    /// Whether the failure is the transport's (unreachable, timed out, or a 5xx answer): the
    /// request may succeed later.
    pub fn is_transport(&self) -> bool {
        match self {
            FedError::Transport { .. } => true,
            FedError::Remote { status, .. } => status.is_server_error(),
            FedError::Invalid { .. } | FedError::Disabled { .. } => false,
        }
    }

    /// The remote's HTTP status, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            FedError::Remote { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The remote's `errcode`, if it answered with an error.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            FedError::Remote { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<FedError> for Error {
    /// For a client request that needed another server: a 4xx answer is passed on as it came
    /// (e.g. 404 `M_NOT_FOUND` for an unknown profile), with federation off what is asked for is
    /// not found (404 `M_NOT_FOUND`), anything else is 502 `M_UNKNOWN`.
    fn from(e: FedError) -> Self {
        match e {
            FedError::Disabled { .. } => Error::not_found(e.to_string()),
            FedError::Remote { status, kind, message, .. } if status.is_client_error() => {
                Error::matrix(status, kind, message)
            }
            other => Error::matrix(StatusCode::BAD_GATEWAY, ErrorKind::Unknown, other.to_string()),
        }
    }
}

/// Why a signature could not be checked or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No usable key: the server is unreachable, does not publish this key ID, or the key had
    /// expired at the time that matters.
    #[error("no usable key {key_id} of {server}: {reason}")]
    Unavailable {
        /// The signing server.
        server: OwnedServerName,
        /// The key ID, or `*` when every key was needed.
        key_id: String,
        /// Why none could be had.
        reason: String,
    },
    /// The object is malformed or a signature does not verify.
    #[error("signature check failed: {0}")]
    Invalid(#[from] ruma::signatures::VerificationError),
}
