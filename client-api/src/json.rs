//! Request bodies: reading them within the configured size limit, and parsing JSON bodies of
//! endpoints ruma does not model. Malformed JSON is `M_NOT_JSON`, JSON of the wrong shape
//! `M_BAD_JSON`, as for every ruma endpoint.

use axum::{
    body::{Body, Bytes},
    http::StatusCode,
};
use hearth_core::Homeserver;
use ruma::api::error::ErrorKind;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Result};

/// Reads a whole request body, refusing more than `limits.max_request_bytes` with 413
/// `M_TOO_LARGE`.
pub async fn read_body(hs: &Homeserver, body: Body) -> Result<Bytes> {
    let limit = hs.config().limits.max_request_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooLarge,
            format!("Request bodies are limited to {limit} bytes"),
        )
    })
}

/// Parses a request body.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::NotJson, "The body is not valid JSON")
    })?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, e.to_string()))
}
