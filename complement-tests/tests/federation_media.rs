//! MED-4: a user downloads another server's media (federation media endpoint): identical bytes,
//! a thumbnail too, cached so it stays available when that server is gone (SCENARIOS.md ›
//! Content repository).

use std::io::Cursor;

use hearth_complement_tests::{
    Cluster, FakePeer, TestServer, fake_peer::Signing, federation::enable_federation, scenario,
};
use image::{ImageFormat, RgbaImage};
use reqwest::Method;

/// A `width` × `height` PNG of a colour gradient.
fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([u8::try_from(x % 256).unwrap_or(0), u8::try_from(y % 256).unwrap_or(0), 128, 255])
    });
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).expect("encoding a PNG");
    bytes.into_inner()
}

scenario!(med_4_media_of_another_server_is_fetched_identical_and_cached, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    let hs2 = servers.pop().expect("two servers");
    let hs1 = servers.pop().expect("two servers");
    let bob = hs2.client().register("bob", "password1234").await;
    let bytes = png(320, 240);
    let uploaded = bob
        .raw(
            Method::POST,
            "/_matrix/media/v3/upload?filename=cat.png",
            Some(bytes.clone()),
            Some("image/png"),
        )
        .await;
    let mxc = uploaded.expect_status(200)["content_uri"].as_str().expect("content_uri").to_owned();
    let mxc = mxc.strip_prefix("mxc://").expect("an mxc URI").to_owned();
    let alice = hs1.client().register("alice", "password1234").await;

    let downloaded = alice.get(&format!("/_matrix/client/v1/media/download/{mxc}")).await;
    downloaded.expect_status(200);
    assert_eq!(downloaded.bytes, bytes, "identical bytes");
    assert_eq!(downloaded.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));

    let thumbnail =
        alice.get(&format!("/_matrix/client/v1/media/thumbnail/{mxc}?width=32&height=32&method=scale")).await;
    thumbnail.expect_status(200);
    let image = image::load_from_memory(&thumbnail.bytes).expect("an image");
    assert!(
        image.width() < 320 && image.height() < 240,
        "a smaller image: {}x{}",
        image.width(),
        image.height()
    );

    // Cached: still served after the other server stopped.
    hs2.stop().await;
    let again = alice.get(&format!("/_matrix/client/v1/media/download/{mxc}")).await;
    again.expect_status(200);
    assert_eq!(again.bytes, bytes);

    let (server, _) = mxc.split_once('/').expect("server/media_id");
    let unknown = alice.get(&format!("/_matrix/client/v1/media/download/{server}/nosuchmedia")).await;
    assert_eq!(unknown.status, 502, "the server is gone: {}", unknown.body);
});

scenario!(med_4_unknown_remote_media_is_not_found, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let missing =
        alice.get(&format!("/_matrix/client/v1/media/download/{}/nosuchmedia", servers[1].server_name)).await;
    missing.expect_error(404, "M_NOT_FOUND");
});

scenario!(other_servers_download_our_media_only_when_signed, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let bob = hs.client().register("bob", "password1234").await;
    let uploaded = bob
        .raw(Method::POST, "/_matrix/media/v3/upload", Some(b"plain bytes".to_vec()), Some("text/plain"))
        .await;
    let uri = uploaded.expect_status(200)["content_uri"].as_str().expect("content_uri").to_owned();
    let media_id = uri.rsplit('/').next().expect("a media ID").to_owned();
    let path = format!("/_matrix/federation/v1/media/download/{media_id}");

    let answer = peer.request(&hs, Method::GET, &path, None, Signing::Valid).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("multipart/mixed"), "{content_type}");
    assert!(answer.text.contains("plain bytes"), "{}", answer.text);

    peer.request(&hs, Method::GET, &path, None, Signing::Missing).await.expect_error(401, "M_UNAUTHORIZED");
});
