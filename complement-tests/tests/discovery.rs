//! BAD-7: `/versions` and `/capabilities` (SCENARIOS.md › Room versions & bad input), and the
//! Prometheus `/metrics` endpoint.

use hearth_complement_tests::{TestServer, scenario};
use ruma::RoomVersionId;
use serde_json::json;

/// The minor number of a `v1.N` spec version.
fn minor(version: &str) -> Option<u32> {
    version.strip_prefix("v1.")?.parse().ok()
}

scenario!(bad_7_versions_lists_only_well_formed_versions_we_serve, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let response = client.get("/_matrix/client/versions").await;
    let body = response.expect_status(200);
    let versions: Vec<&str> = body["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect();
    for expected in ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5"] {
        assert!(versions.contains(&expected), "{expected} is claimed: {versions:?}");
    }
    for version in &versions {
        assert!(version.starts_with("r0.") || minor(version).is_some(), "malformed version {version}");
    }
    let unstable = &body["unstable_features"];
    assert!(unstable.is_null() || unstable.is_object(), "unstable_features is optional: {body}");

    // From v1.11 on, clients fetch media only through the authenticated endpoints: claiming it
    // is only honest once downloads are served there.
    let download = client.get("/_matrix/client/v1/media/download/localhost/abc").await;
    if download.body["errcode"] == "M_UNRECOGNIZED" {
        let newest = versions.iter().filter_map(|v| minor(v)).max();
        assert!(newest < Some(11), "v1.11+ claimed without authenticated media: {versions:?}");
    }
});

scenario!(bad_7_capabilities_list_room_versions_and_password_change, |backend| {
    let hs = TestServer::start_with(backend, |c| c.rooms.default_version = RoomVersionId::V11).await;
    let client = hs.client();
    client.get("/_matrix/client/v3/capabilities").await.expect_error(401, "M_MISSING_TOKEN");
    let alice = client.register("alice", "sUp3rs3cret").await;

    let response = alice.get("/_matrix/client/v3/capabilities").await;
    let capabilities = &response.expect_status(200)["capabilities"];
    let room_versions = &capabilities["m.room_versions"];
    assert_eq!(room_versions["default"], "11", "the configured default: {capabilities}");
    for version in ["6", "7", "8", "9", "10", "11", "12"] {
        assert_eq!(room_versions["available"][version], "stable", "room version {version}: {capabilities}");
    }
    // Regression: ruma leaves out capabilities equal to their default, and `m.change_password`
    // went missing.
    assert_eq!(capabilities["m.change_password"], json!({ "enabled": true }), "{capabilities}");
    assert_eq!(capabilities["m.3pid_changes"], json!({ "enabled": false }), "no 3PIDs: {capabilities}");
    alice.get("/_matrix/client/r0/capabilities").await.expect_status(200);
});

scenario!(bad_7_capabilities_default_to_the_recommended_room_version, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "sUp3rs3cret").await;
    let response = alice.get("/_matrix/client/v3/capabilities").await;
    let room_versions = &response.expect_status(200)["capabilities"]["m.room_versions"];
    let default = room_versions["default"].as_str().expect("default");
    assert_eq!(room_versions["available"][default], "stable", "the default is available: {room_versions}");
});

scenario!(metrics_count_answered_requests_by_route_and_status, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.get("/_matrix/client/versions").await.expect_status(200);
    client.get("/_matrix/client/versions").await.expect_status(200);
    client.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_MISSING_TOKEN");

    let metrics = client.get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    let content_type = metrics.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let lines: Vec<&str> = metrics.text.lines().collect();
    let versions =
        r#"hearth_http_requests_total{method="GET",route="/_matrix/client/versions",status="200"} 2"#;
    assert!(lines.contains(&versions), "{}", metrics.text);
    let whoami = r#"hearth_http_requests_total{method="GET",route="/_matrix/client/v3/account/whoami",status="401"} 1"#;
    assert!(lines.contains(&whoami), "{}", metrics.text);
    assert!(
        lines.iter().any(|l| l.starts_with("hearth_http_request_duration_seconds_bucket")),
        "{}",
        metrics.text
    );
});

scenario!(metrics_are_not_served_when_switched_off, |backend| {
    let hs = TestServer::start_with(backend, |c| c.metrics.enabled = false).await;
    hs.client().get("/metrics").await.expect_error(404, "M_UNRECOGNIZED");
});
