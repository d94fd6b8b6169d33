//! JSON bodies of endpoints ruma does not model: malformed JSON is `M_NOT_JSON`, JSON of the
//! wrong shape `M_BAD_JSON`, as for every ruma endpoint.

use axum::http::StatusCode;
use ruma::api::error::ErrorKind;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Result};

/// Parses a request body.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::NotJson, "The body is not valid JSON")
    })?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, e.to_string()))
}
