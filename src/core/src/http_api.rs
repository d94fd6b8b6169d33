//! What the client and federation APIs share at the HTTP edge: turning a request into a typed
//! ruma request (with the spec's `M_NOT_JSON` / `M_BAD_JSON` / `M_INVALID_PARAM` errors) and
//! rendering an [`Error`] as the spec's error body. No routes live here.

use std::panic::AssertUnwindSafe;

use http::StatusCode;
use ruma::api::{
    IncomingRequest, IncomingRequestExt, Metadata, OutgoingResponse, OutgoingResponseExt,
    error::{DeserializationError, ErrorBody, ErrorKind, FromHttpRequestError, StandardErrorBody},
    path_builder::PathBuilder,
};
use serde::de::IgnoredAny;

use crate::{Error, Result};

/// Parses a ruma request from its HTTP form. `path_args` are the percent-decoded path parameters;
/// missing trailing ones are passed as empty strings (a trailing `{state_key}` may be empty).
pub fn parse_request<T: IncomingRequest>(request: http::Request<&[u8]>, path_args: &[&str]) -> Result<T> {
    let bytes = *request.body();
    let mut path_refs = path_args.to_vec();
    let expected = T::PATH_BUILDER._path_parameters().len();
    path_refs.resize(expected.max(path_refs.len()), "");
    // Some of ruma's deserializers panic on bodies they did not expect (`LoginInfo` indexes a
    // missing `type`); a malformed body is the sender's mistake, not a 500.
    let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        T::try_from_http_request(request, &path_refs).map_err(|e| {
            // An ID in the path or query string that does not parse is a bad parameter.
            let bad_param = matches!(
                &e,
                FromHttpRequestError::Deserialization(
                    DeserializationError::Ident(_) | DeserializationError::Query(_)
                )
            );
            (bad_param, e.to_string())
        })
    }))
    .unwrap_or_else(|_| Err((false, "The body does not fit this endpoint".to_owned())));
    parsed.map_err(|(bad_param, message)| {
        // Only bodies ruma could not use are looked at twice: not JSON at all, or JSON of the
        // wrong shape. (Raw-body endpoints such as media upload never fail here.)
        if bad_param {
            Error::invalid_param(message)
        } else if is_malformed(bytes) && !bytes.is_empty() {
            Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::NotJson, "The body is not valid JSON")
        } else {
            Error::bad_json(message)
        }
    })
}

/// Every path (r0, v3, unstable…) of an endpoint, from its ruma metadata.
pub fn endpoint_paths<R: Metadata>() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = R::PATH_BUILDER.all_paths().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// The HTTP form of a ruma response (a 500 if it cannot be serialised, which would be a bug).
pub fn response<T: OutgoingResponse>(response: T) -> http::Response<Vec<u8>> {
    response
        .try_into_http_response::<Vec<u8>>()
        .unwrap_or_else(|e| error_response(Error::Internal(anyhow::anyhow!("serialising response: {e}"))))
}

/// The HTTP response for `error`: the spec's `{"errcode", "error"}` body (plus fields such as
/// `retry_after_ms`) with its status. Internal errors are logged here, once, and answered with an
/// opaque 500 `M_UNKNOWN`.
pub fn error_response(error: Error) -> http::Response<Vec<u8>> {
    let (status, kind, message) = match error {
        Error::Matrix { status, kind, message } => (status, kind, message),
        Error::Uiaa(info) => {
            let body = serde_json::to_vec(&info).unwrap_or_default();
            let mut response = http::Response::new(body);
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            return response;
        }
        Error::Internal(error) => {
            tracing::error!(error = format!("{error:#}"), "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Unknown, "Internal server error".to_owned())
        }
    };
    let error =
        ruma::api::error::Error::new(status, ErrorBody::Standard(StandardErrorBody::new(kind, message)));
    error.try_into_http_response::<Vec<u8>>().unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialising an error response");
        let mut response = http::Response::new(Vec::new());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
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
