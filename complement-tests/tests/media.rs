//! The media repository (SCENARIOS.md › MED-1, MED-2, MED-3, MED-5): uploads, the asynchronous
//! create/PUT pair, authenticated downloads and their headers, thumbnails, limits and quotas,
//! and the frozen unauthenticated endpoints.

use std::io::Cursor;

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use image::{ImageFormat, RgbaImage};
use reqwest::Method;
use serde_json::json;

const UPLOAD: &str = "/_matrix/media/v3/upload";
const CLIENT_MEDIA: &str = "/_matrix/client/v1/media";

async fn upload(client: &Client, bytes: &[u8], content_type: &str, filename: Option<&str>) -> Response {
    let path = match filename {
        Some(name) => format!("{UPLOAD}?filename={}", enc(name)),
        None => UPLOAD.to_owned(),
    };
    client.raw(Method::POST, &path, Some(bytes.to_vec()), Some(content_type)).await
}

/// Uploads and returns the `mxc://` URI's `server/media_id` part.
async fn upload_ok(client: &Client, bytes: &[u8], content_type: &str, filename: Option<&str>) -> String {
    let response = upload(client, bytes, content_type, filename).await;
    let uri = response.expect_status(200)["content_uri"].as_str().expect("content_uri").to_owned();
    uri.strip_prefix("mxc://").expect("an mxc:// URI").to_owned()
}

async fn download(client: &Client, mxc: &str) -> Response {
    client.get(&format!("{CLIENT_MEDIA}/download/{mxc}")).await
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// A `width` × `height` PNG of a colour gradient.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image =
        RgbaImage::from_fn(width, height, |x, y| image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255]));
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).expect("encoding a PNG");
    bytes.into_inner()
}

/// The files in the server's media store (temporary files aside).
fn stored_files(hs: &TestServer) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| {
                        let path = entry.path();
                        match (path.is_dir(), entry.file_name() == "tmp") {
                            (true, true) => 0,
                            (true, false) => count(&path),
                            (false, _) => 1,
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&hs.data_dir().join("media"))
}

scenario!(med_1_uploaded_content_downloads_with_a_token_only, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    let mxc = upload_ok(&alice, b"hello, media", "text/plain", Some("hello.txt")).await;
    assert!(mxc.starts_with(&format!("{}/", hs.server_name)), "{mxc}");

    // Any user of the server may download it, with the type it was uploaded with.
    let response = download(&bob, &mxc).await;
    response.expect_status(200);
    assert_eq!(response.bytes, b"hello, media");
    assert_eq!(header(&response, "content-type"), "text/plain");
    assert_eq!(header(&response, "content-disposition"), "inline; filename=\"hello.txt\"");
    assert!(header(&response, "content-security-policy").starts_with("sandbox; default-src 'none';"));
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "cross-origin-resource-policy"), "cross-origin");

    download(&hs.client(), &mxc).await.expect_error(401, "M_MISSING_TOKEN");
    upload(&hs.client(), b"x", "text/plain", None).await.expect_error(401, "M_MISSING_TOKEN");
});

scenario!(med_2_content_disposition_keeps_names_and_serves_only_safe_types_inline, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let photo = upload_ok(&alice, &png(4, 4), "image/png", Some("Фото 1.png")).await;
    let response = download(&alice, &photo).await;
    response.expect_status(200);
    assert_eq!(
        header(&response, "content-disposition"),
        "inline; filename=\"____ 1.png\"; filename*=utf-8''%D0%A4%D0%BE%D1%82%D0%BE%201.png"
    );

    // A file name in the URL overrides the stored one.
    let response = alice.get(&format!("{CLIENT_MEDIA}/download/{photo}/{}", enc("cat.png"))).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-disposition"), "inline; filename=\"cat.png\"");

    // HTML (and anything else not on the spec's list) is an attachment, never rendered.
    let page = upload_ok(&alice, b"<script>alert(1)</script>", "text/html", Some("page.html")).await;
    let response = download(&alice, &page).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-type"), "text/html");
    assert_eq!(header(&response, "content-disposition"), "attachment; filename=\"page.html\"");

    // No name at all: just the disposition.
    let unnamed = upload_ok(&alice, b"\x00\x01", "application/octet-stream", None).await;
    assert_eq!(header(&download(&alice, &unnamed).await, "content-disposition"), "attachment");
});

scenario!(med_3_png_thumbnails_are_smaller_pngs_and_the_config_has_the_upload_size, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let original = png(200, 100);
    let mxc = upload_ok(&alice, &original, "image/png", Some("wide.png")).await;

    let thumbnail = |method: &'static str| {
        let alice = alice.clone();
        let mxc = mxc.clone();
        async move {
            let path = format!("{CLIENT_MEDIA}/thumbnail/{mxc}?width=32&height=32&method={method}");
            let response = alice.get(&path).await;
            response.expect_status(200);
            assert_eq!(header(&response, "content-type"), "image/png");
            let image =
                image::load_from_memory_with_format(&response.bytes, ImageFormat::Png).expect("a PNG");
            (image.width(), image.height(), response.bytes.len())
        }
    };
    // Scale fits within the box, keeping the aspect ratio; crop fills it.
    let (width, height, size) = thumbnail("scale").await;
    assert_eq!((width, height), (32, 16));
    assert!(size < original.len(), "{size} bytes is not smaller than {}", original.len());
    let (width_cropped, height_cropped, _) = thumbnail("crop").await;
    assert_eq!((width_cropped, height_cropped), (32, 32));
    // Asked again, the cached thumbnail is the same.
    assert_eq!(thumbnail("scale").await, (width, height, size));

    // An image no larger than the request comes back as it is, never upscaled.
    let small = upload_ok(&alice, &png(10, 10), "image/png", None).await;
    let response =
        alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{small}?width=96&height=96&method=crop")).await;
    response.expect_status(200);
    assert_eq!(response.bytes, png(10, 10));

    let config = alice.get(&format!("{CLIENT_MEDIA}/config")).await;
    assert_eq!(config.expect_status(200)["m.upload.size"], json!(50 << 20));
});

scenario!(thumbnails_of_content_that_is_not_an_image_are_refused, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let text = upload_ok(&alice, b"not an image", "text/plain", None).await;
    let fake = upload_ok(&alice, b"not a png either", "image/png", None).await;
    let image = upload_ok(&alice, &png(50, 50), "image/png", None).await;

    for mxc in [&text, &fake] {
        let response = alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{mxc}?width=32&height=32")).await;
        response.expect_error(400, "M_UNKNOWN");
    }
    let bad_method =
        alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{image}?width=32&height=32&method=zoom")).await;
    bad_method.expect_error(400, "M_INVALID_PARAM");
    let zero = alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{image}?width=0&height=32")).await;
    zero.expect_error(400, "M_INVALID_PARAM");
});

scenario!(med_5_unknown_media_is_404_and_oversized_uploads_413, |backend| {
    let hs = TestServer::start_with(backend, |config| config.limits.max_upload_bytes = 1000).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let unknown = format!("{}/NoSuchMediaId", hs.server_name);
    download(&alice, &unknown).await.expect_error(404, "M_NOT_FOUND");
    let response = alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{unknown}?width=32&height=32")).await;
    response.expect_error(404, "M_NOT_FOUND");
    // Media of other servers needs federation, which is not there yet.
    download(&alice, "elsewhere.test/SomeMediaId").await.expect_error(404, "M_NOT_FOUND");

    upload(&alice, &[7; 1001], "application/octet-stream", None).await.expect_error(413, "M_TOO_LARGE");
    upload_ok(&alice, &[7; 1000], "application/octet-stream", None).await;
});

scenario!(uploads_larger_than_the_json_body_limit_stream_through, |backend| {
    let hs = TestServer::start_with(backend, |config| config.limits.max_request_bytes = 64 << 10).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let mxc = upload_ok(&alice, &bytes, "application/octet-stream", Some("big.bin")).await;
    let response = download(&alice, &mxc).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    assert!(response.bytes == bytes, "the download differs from the upload");
});

scenario!(identical_uploads_share_one_file, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    let first = upload_ok(&alice, b"the same bytes", "text/plain", Some("a.txt")).await;
    let second = upload_ok(&bob, b"the same bytes", "application/octet-stream", Some("b.bin")).await;
    assert_ne!(first, second, "each upload gets its own mxc:// URI");
    assert_eq!(stored_files(&hs), 1);

    // Each URI keeps its own type and name.
    let response = download(&alice, &second).await;
    assert_eq!(response.bytes, b"the same bytes");
    assert_eq!(header(&response, "content-type"), "application/octet-stream");
    assert_eq!(header(&response, "content-disposition"), "attachment; filename=\"b.bin\"");
});

scenario!(created_media_ids_take_content_once_from_their_creator, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    let created = alice.post("/_matrix/media/v1/create", json!({})).await;
    let body = created.expect_status(200);
    assert!(body["unused_expires_at"].as_i64().is_some_and(|t| t > 0), "{body}");
    let mxc = body["content_uri"].as_str().and_then(|u| u.strip_prefix("mxc://")).expect("mxc").to_owned();

    download(&alice, &mxc).await.expect_error(504, "M_NOT_YET_UPLOADED");

    let put = |client: &Client, mxc: &str, bytes: &'static [u8]| {
        let (client, path) = (client.clone(), format!("{UPLOAD}/{mxc}?filename=later.txt"));
        async move { client.raw(Method::PUT, &path, Some(bytes.to_vec()), Some("text/plain")).await }
    };
    put(&bob, &mxc, b"bob's").await.expect_error(403, "M_FORBIDDEN");
    put(&alice, &mxc, b"alice's").await.expect_status(200);
    put(&alice, &mxc, b"again").await.expect_error(409, "M_CANNOT_OVERWRITE_MEDIA");
    put(&alice, &format!("{}/NeverCreated", hs.server_name), b"x").await.expect_error(404, "M_NOT_FOUND");

    let response = download(&bob, &mxc).await;
    response.expect_status(200);
    assert_eq!(response.bytes, b"alice's");
    assert_eq!(header(&response, "content-disposition"), "inline; filename=\"later.txt\"");
});

scenario!(pending_media_ids_per_user_are_limited, |backend| {
    let hs = TestServer::start_with(backend, |config| config.media.max_pending_uploads = 1).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let first = alice.post("/_matrix/media/v1/create", json!({})).await;
    let mxc = first.expect_status(200)["content_uri"].as_str().expect("uri").to_owned();
    alice.post("/_matrix/media/v1/create", json!({})).await.expect_error(429, "M_LIMIT_EXCEEDED");

    // Uploading to the pending one frees its place.
    let path = format!("{UPLOAD}/{}", mxc.trim_start_matches("mxc://"));
    alice.raw(Method::PUT, &path, Some(b"done".to_vec()), Some("text/plain")).await.expect_status(200);
    alice.post("/_matrix/media/v1/create", json!({})).await.expect_status(200);
});

scenario!(uploads_beyond_the_user_quota_are_forbidden, |backend| {
    let hs = TestServer::start_with(backend, |config| config.media.user_quota_bytes = 100).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    upload_ok(&alice, &[1; 60], "application/octet-stream", None).await;
    upload(&alice, &[2; 60], "application/octet-stream", None).await.expect_error(403, "M_FORBIDDEN");
    upload_ok(&alice, &[3; 40], "application/octet-stream", None).await;
    // The quota is per user.
    upload_ok(&bob, &[4; 100], "application/octet-stream", None).await;
});

scenario!(unauthenticated_media_endpoints_are_frozen_unless_enabled, |backend| {
    let frozen = TestServer::start(backend.clone()).await;
    let alice = frozen.client().register("alice", "passw0rd!").await;
    let mxc = upload_ok(&alice, &png(40, 40), "image/png", None).await;
    for path in [
        format!("/_matrix/media/v3/download/{mxc}"),
        format!("/_matrix/media/v3/download/{mxc}/x.png"),
        format!("/_matrix/media/v3/thumbnail/{mxc}?width=32&height=32"),
    ] {
        frozen.client().get(&path).await.expect_error(404, "M_NOT_FOUND");
        alice.get(&path).await.expect_error(404, "M_NOT_FOUND");
    }

    let open = TestServer::start_with(backend, |config| config.media.legacy_unauthenticated = true).await;
    let alice = open.client().register("alice", "passw0rd!").await;
    let mxc = upload_ok(&alice, &png(40, 40), "image/png", None).await;
    let response = open.client().get(&format!("/_matrix/media/v3/download/{mxc}")).await;
    response.expect_status(200);
    assert_eq!(response.bytes, png(40, 40));
    let response = open.client().get(&format!("/_matrix/media/v3/thumbnail/{mxc}?width=32&height=32")).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-type"), "image/png");
});

scenario!(a_chunked_upload_is_cut_off_at_the_limit_and_leaves_no_file, |backend| {
    let hs = TestServer::start_with(backend, |config| config.limits.max_upload_bytes = 1000).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let token = alice.token.clone().expect("token");

    // No Content-Length: the limit can only bite while the body streams in.
    let address = hs.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connecting");
    let mut request = format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..4 {
        request.extend_from_slice(format!("{:x}\r\n", 600).as_bytes());
        request.extend_from_slice(&[9; 600]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, &request).await.expect("sending");
    let mut answer = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("M_TOO_LARGE"), "{answer}");

    assert_eq!(stored_files(&hs), 0);
    let leftovers = std::fs::read_dir(hs.data_dir().join("media/tmp")).expect("tmp").count();
    assert_eq!(leftovers, 0, "the temporary file is removed");
});

scenario!(an_animated_gif_is_thumbnailed_from_its_first_frame, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for shade in [10u8, 200] {
            let frame = RgbaImage::from_pixel(100, 50, image::Rgba([shade, shade, shade, 255]));
            encoder.encode_frame(image::Frame::new(frame)).expect("encoding a frame");
        }
    }
    let mxc = upload_ok(&alice, &gif, "image/gif", Some("anim.gif")).await;

    let response =
        alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{mxc}?width=32&height=32&method=scale")).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-type"), "image/png");
    let thumbnail = image::load_from_memory(&response.bytes).expect("an image").to_rgba8();
    assert_eq!(thumbnail.dimensions(), (32, 16));
    assert!(thumbnail.get_pixel(16, 8)[0] < 50, "the first (dark) frame");
});

scenario!(images_whose_header_claims_too_many_pixels_are_not_decoded, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    // A GIF header announcing 60000 × 60000 pixels (3.6 gigapixels), with one tiny frame.
    let mut bomb = b"GIF89a".to_vec();
    bomb.extend_from_slice(&[0x60, 0xEA, 0x60, 0xEA, 0x00, 0x00, 0x00]);
    bomb.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0x60, 0xEA, 0x60, 0xEA, 0x00]);
    bomb.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
    let mxc = upload_ok(&alice, &bomb, "image/gif", None).await;

    let response = alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{mxc}?width=32&height=32")).await;
    response.expect_error(413, "M_TOO_LARGE");
});

scenario!(jpeg_photos_get_jpeg_thumbnails, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let photo = image::RgbImage::from_fn(120, 90, |x, y| image::Rgb([(x * 2) as u8, (y * 2) as u8, 90]));
    let mut jpeg = Cursor::new(Vec::new());
    photo.write_to(&mut jpeg, ImageFormat::Jpeg).expect("encoding a JPEG");
    let mxc = upload_ok(&alice, jpeg.get_ref(), "image/jpeg", Some("photo.jpg")).await;

    let response = alice.get(&format!("{CLIENT_MEDIA}/thumbnail/{mxc}?width=96&height=96&method=crop")).await;
    response.expect_status(200);
    assert_eq!(header(&response, "content-type"), "image/jpeg");
    let thumbnail = image::load_from_memory_with_format(&response.bytes, ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((thumbnail.width(), thumbnail.height()), (96, 90));
});
