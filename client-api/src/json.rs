//! Request bodies: reading them within the configured size limit, and parsing JSON bodies of
//! endpoints ruma does not model. Malformed JSON is `M_NOT_JSON`, JSON of the wrong shape
//! `M_BAD_JSON`, as for every ruma endpoint.

use axum::{
    body::{Body, Bytes},
    http::StatusCode,
};
use hearth_core::Homeserver;
use ruma::api::error::ErrorKind;
use serde::de::{DeserializeOwned, IgnoredAny};

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

/// Whether `bytes` is not JSON at all: malformed, or not UTF-8. Skipping over a document with
/// `IgnoredAny` does not look inside strings, so UTF-8 is checked on its own. JSON whose only
/// fault is a `NaN` or `Infinity` number (which some encoders emit) counts as JSON, so that it is
/// refused as `M_BAD_JSON` like any other number Matrix does not allow.
pub fn is_malformed(bytes: &[u8]) -> bool {
    let malformed = |bytes: &[u8]| {
        std::str::from_utf8(bytes).is_err() || serde_json::from_slice::<IgnoredAny>(bytes).is_err()
    };
    malformed(bytes) && without_non_finite_numbers(bytes).is_none_or(|fixed| malformed(&fixed))
}

/// `bytes` with every `NaN`, `Infinity` and `-Infinity` outside strings replaced by `0`, or
/// `None` if there was none.
fn without_non_finite_numbers(bytes: &[u8]) -> Option<Vec<u8>> {
    let (mut out, mut found, mut in_string, mut escaped, mut i) = (Vec::new(), false, false, false, 0);
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            (in_string, escaped) = (escaped || byte != b'"', !escaped && byte == b'\\');
        } else if let Some(token) =
            [&b"-Infinity"[..], b"Infinity", b"NaN"].into_iter().find(|t| bytes[i..].starts_with(t))
        {
            out.push(b'0');
            (found, i) = (true, i + token.len());
            continue;
        } else {
            in_string = byte == b'"';
        }
        out.push(byte);
        i += 1;
    }
    found.then_some(out)
}

/// Parses a request body.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::NotJson, "The body is not valid JSON")
    })?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::is_malformed;

    #[test]
    fn invalid_utf8_inside_a_string_is_malformed() {
        assert!(is_malformed(b"{\"a\":\"\xff\"}"));
        assert!(is_malformed(b"{\"a\":1} trailing"));
        assert!(!is_malformed(b"{\"a\":\"\xc3\xa9\"}"));
        assert!(!is_malformed(b"[1, 2]"));
    }

    #[test]
    fn non_finite_numbers_are_json_of_the_wrong_kind() {
        assert!(!is_malformed(b"{\"a\": NaN}"));
        assert!(!is_malformed(b"{\"a\": [Infinity, -Infinity]}"));
        assert!(is_malformed(b"{\"a\": NaN"));
        assert!(is_malformed(b"{\"a\": NaNa}"));
        assert!(is_malformed(b"{\"a\\\"\": NaN, b}"));
        assert!(is_malformed(b"{\"NaN\": x}"));
    }
}
