//! `Content-Disposition` for served media (spec: Content repository › Serving inline content):
//! `inline` only for the content types the spec lists as safe, `attachment` for everything else
//! (an uploaded HTML page must never render in the browser as the homeserver's origin). The
//! file name goes out twice: as a quoted ASCII `filename` every browser reads, and as an RFC 8187
//! `filename*=utf-8''…` that keeps a non-ASCII name intact.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The spec's list of content types safe to serve with `Content-Disposition: inline`.
const INLINE_TYPES: [&str; 26] = [
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// RFC 8187's `attr-char`s stay as they are; everything else is percent-encoded.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Whether content of this type (parameters such as `charset` ignored) may be shown inline.
pub fn is_inline_safe(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    INLINE_TYPES.iter().any(|safe| safe.eq_ignore_ascii_case(essence))
}

/// The `Content-Disposition` header value for content of `content_type` named `filename`.
/// Always ASCII, so always a valid header value.
pub fn content_disposition(content_type: &str, filename: Option<&str>) -> String {
    let kind = if is_inline_safe(content_type) { "inline" } else { "attachment" };
    let Some(filename) = filename.filter(|name| !name.is_empty()) else {
        return kind.to_owned();
    };
    let mut value = format!("{kind}; filename=\"{}\"", ascii_fallback(filename));
    if !filename.is_ascii() || filename.chars().any(char::is_control) {
        value.push_str("; filename*=utf-8''");
        value.extend(utf8_percent_encode(filename, ATTR_CHAR_ESCAPES));
    }
    value
}

/// `filename` as the inside of a quoted string: non-ASCII and control characters become `_`,
/// quotes and backslashes are escaped.
fn ascii_fallback(filename: &str) -> String {
    let mut out = String::with_capacity(filename.len());
    for c in filename.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_inline_and_html_is_an_attachment() {
        assert_eq!(content_disposition("image/png", None), "inline");
        assert_eq!(content_disposition("IMAGE/PNG", None), "inline");
        assert_eq!(content_disposition("text/plain; charset=utf-8", None), "inline");
        assert_eq!(content_disposition("text/html", None), "attachment");
        assert_eq!(content_disposition("image/svg+xml", None), "attachment");
        assert_eq!(content_disposition("application/octet-stream", Some("")), "attachment");
    }

    #[test]
    fn an_ascii_name_is_quoted_with_quotes_and_backslashes_escaped() {
        assert_eq!(content_disposition("image/png", Some("cat.png")), "inline; filename=\"cat.png\"");
        assert_eq!(
            content_disposition("text/html", Some("a \"b\"\\c.html")),
            "attachment; filename=\"a \\\"b\\\"\\\\c.html\""
        );
    }

    #[test]
    fn a_unicode_name_gets_an_ascii_fallback_and_a_utf8_form() {
        assert_eq!(
            content_disposition("image/jpeg", Some("Фото 1.jpg")),
            "inline; filename=\"____ 1.jpg\"; filename*=utf-8''%D0%A4%D0%BE%D1%82%D0%BE%201.jpg"
        );
    }

    #[test]
    fn control_characters_never_reach_the_header() {
        let value = content_disposition("text/plain", Some("a\r\nSet-Cookie: x"));
        assert!(!value.contains('\r') && !value.contains('\n'), "{value}");
        assert!(value.contains("filename*=utf-8''a%0D%0ASet-Cookie%3A%20x"), "{value}");
    }
}
