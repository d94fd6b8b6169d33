//! Request heads in (parsed by `httparse`, hyper's own parser, into owned `http` types) and
//! response heads out.

use std::time::SystemTime;

use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version, header, response,
};

/// The most header lines a request may carry (hyper's default too).
const MAX_HEADERS: usize = 100;

/// How a request's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head, owning everything: the bytes it came from can be freed.
#[derive(Debug)]
pub(super) struct Head {
    pub request: Request<()>,
    /// How many bytes of the buffer the head took.
    pub len: usize,
    pub body: BodyKind,
    /// Whether the client lets the connection carry another request.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// The request asks for a protocol switch (a WebSocket), which hyper serves.
    pub upgrade: bool,
}

/// The outcome of parsing the bytes received so far. The head is boxed: the connection's future
/// would otherwise keep a slot of its size for as long as the connection lives.
#[derive(Debug)]
pub(super) enum Parsed {
    Partial,
    Complete(Box<Head>),
    Invalid(StatusCode),
}

/// Parses `buf` as a request head; heads longer than `max_len` are refused with 431.
pub(super) fn parse(buf: &[u8], max_len: usize) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut raw = httparse::Request::new(&mut headers);
    let too_large = Parsed::Invalid(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let len = match raw.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_len => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_len => return Parsed::Partial,
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return too_large,
        Err(_) => return Parsed::Invalid(StatusCode::BAD_REQUEST),
    };
    match owned(&raw) {
        Some((request, framing)) => {
            let (body, keep_alive, expect_continue, upgrade) = framing;
            Parsed::Complete(Box::new(Head { request, len, body, keep_alive, expect_continue, upgrade }))
        }
        None => Parsed::Invalid(StatusCode::BAD_REQUEST),
    }
}

type Framing = (BodyKind, bool, bool, bool);

/// The head as owned `http` types and its framing, or `None` when it is malformed.
fn owned(raw: &httparse::Request<'_, '_>) -> Option<(Request<()>, Framing)> {
    let method = Method::from_bytes(raw.method?.as_bytes()).ok()?;
    let uri: Uri = raw.path?.parse().ok()?;
    let version = if raw.version? == 1 { Version::HTTP_11 } else { Version::HTTP_10 };
    let mut headers = HeaderMap::with_capacity(raw.headers.len());
    for h in raw.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let body = body_kind(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_11 => !has_token(&headers, "close"),
        _ => has_token(&headers, "keep-alive"),
    };
    let expect_continue = version == Version::HTTP_11
        && headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let upgrade = headers.contains_key(header::UPGRADE);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Some((request, (body, keep_alive, expect_continue, upgrade)))
}

/// The body's framing (RFC 9112 § 6.3): chunked when `Transfer-Encoding` ends with it, else
/// `Content-Length`; both at once, other transfer codings or unequal lengths are refused.
fn body_kind(headers: &HeaderMap, version: Version) -> Option<BodyKind> {
    let lengths = headers.get_all(header::CONTENT_LENGTH);
    if let Some(coding) = headers.get_all(header::TRANSFER_ENCODING).iter().next_back() {
        let last = coding.to_str().ok()?.rsplit(',').next()?.trim();
        let chunked = last.eq_ignore_ascii_case("chunked");
        let refused = !chunked || version != Version::HTTP_11 || lengths.iter().next().is_some();
        return (!refused).then_some(BodyKind::Chunked);
    }
    let mut length = None;
    for value in lengths.iter().flat_map(|v| v.as_bytes().split(|b| *b == b',')) {
        let digits = value.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    Some(match length {
        None | Some(0) => BodyKind::Empty,
        Some(n) => BodyKind::Length(n),
    })
}

/// Whether a `Connection` header lists `token`.
pub(super) fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How a response's body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delimit {
    /// No body may follow (1xx, 204).
    None,
    /// The answer to `HEAD`, or 304: no body, but the length the handler gave is kept.
    Bodiless,
    Length(u64),
    Chunked,
    /// HTTP/1.0 with a body of unknown size: it ends when the connection does.
    Close,
}

/// The response head, with our own framing headers, `Connection` and (unless set) `Date`.
pub(super) fn response(
    parts: &response::Parts,
    delimit: Delimit,
    keep_alive: bool,
    version: Version,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        let framing = matches!(*name, header::CONTENT_LENGTH | header::TRANSFER_ENCODING);
        if (framing && delimit != Delimit::Bodiless) || *name == header::CONNECTION {
            continue;
        }
        line(&mut out, name.as_str(), value.as_bytes());
    }
    match delimit {
        Delimit::Length(n) => line(&mut out, "content-length", n.to_string().as_bytes()),
        Delimit::Chunked => line(&mut out, "transfer-encoding", b"chunked"),
        Delimit::None | Delimit::Bodiless | Delimit::Close => {}
    }
    if !keep_alive {
        line(&mut out, "connection", b"close");
    } else if version == Version::HTTP_10 {
        line(&mut out, "connection", b"keep-alive");
    }
    if !parts.headers.contains_key(header::DATE) {
        line(&mut out, "date", httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A bare answer for a request that never reached the application (a malformed head).
pub(super) fn refusal(status: StatusCode) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("");
    format!("HTTP/1.1 {} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", status.as_str())
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Parsed {
        parse(text.as_bytes(), 1024)
    }

    #[test]
    fn a_head_needs_its_blank_line() {
        assert!(matches!(head("GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial));
        let Parsed::Complete(h) = head("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nrest") else { panic!() };
        assert_eq!((h.len, h.body, h.keep_alive), (32, BodyKind::Empty, true));
        assert_eq!(h.request.uri().query(), Some("b=c"));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let kind = |text: &str| match head(text) {
            Parsed::Complete(h) => Ok(h.body),
            Parsed::Invalid(status) => Err(status),
            Parsed::Partial => panic!("partial"),
        };
        assert_eq!(kind("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), Ok(BodyKind::Length(5)));
        assert_eq!(kind("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Ok(BodyKind::Chunked));
        let bad = Err(StatusCode::BAD_REQUEST);
        assert_eq!(kind("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), bad);
        assert_eq!(kind("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), bad);
        assert_eq!(kind("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), bad);
        assert_eq!(kind("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), bad);
        assert_eq!(kind("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), bad);
    }

    #[test]
    fn http_1_0_closes_unless_asked_to_keep_alive() {
        let keep = |text: &str| match head(text) {
            Parsed::Complete(h) => h.keep_alive,
            other => panic!("{other:?}"),
        };
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn an_oversized_head_is_refused() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(2000));
        assert!(matches!(head(&long), Parsed::Invalid(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)));
    }
}
