//! BAD-1, BAD-4, BAD-5 (SCENARIOS.md › Room versions & bad input), plus the request size limit
//! and rate limiting.

use hearth_complement_tests::{Client, TestServer, client::password_login, scenario};
use reqwest::Method;
use serde_json::json;

/// POSTs raw bytes as `application/json`.
async fn post_bytes(client: &Client, path: &str, bytes: &[u8]) -> hearth_complement_tests::Response {
    client.raw(Method::POST, path, Some(bytes.to_vec()), Some("application/json")).await
}

scenario!(bad_1_malformed_json_is_not_json, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;

    for bytes in [&b"{\"type\": \"m.login.password\","[..], b"{]", b"not json at all", b"{\"a\": 1} trailing"]
    {
        let response = post_bytes(&client, "/_matrix/client/v3/login", bytes).await;
        assert_eq!(response.status, 400, "{:?}: {}", String::from_utf8_lossy(bytes), response.body);
        assert_eq!(response.body["errcode"], "M_NOT_JSON", "{:?}", String::from_utf8_lossy(bytes));
    }
    let filter = format!("/_matrix/client/v3/user/{}/filter", alice.me());
    post_bytes(&alice, &filter, b"{\"room\":").await.expect_error(400, "M_NOT_JSON");
    let rename = alice.raw(Method::PUT, "/_matrix/client/v3/devices/X", Some(b"{".to_vec()), None).await;
    rename.expect_error(400, "M_NOT_JSON");
    post_bytes(&client, "/_synapse/admin/v1/register", b"{\"nonce\":").await.expect_error(400, "M_NOT_JSON");
});

scenario!(bad_1_invalid_utf8_is_not_json, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", "sUp3rs3cret").await;

    let mut bytes = b"{\"type\":\"m.login.password\",\"user\":\"alice".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\",\"password\":\"sUp3rs3cret\"}");
    post_bytes(&client, "/_matrix/client/v3/login", &bytes).await.expect_error(400, "M_NOT_JSON");

    let register =
        [&b"{\"username\":\"b"[..], &[0xc3, 0x28], b"\",\"auth\":{\"type\":\"m.login.dummy\"}}"].concat();
    post_bytes(&client, "/_matrix/client/v3/register", &register).await.expect_error(400, "M_NOT_JSON");
});

scenario!(bad_1_json_of_the_wrong_shape_is_bad_json, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;

    let numeric_user = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": 1 },
        "password": "sUp3rs3cret",
    });
    client.post("/_matrix/client/v3/login", numeric_user).await.expect_error(400, "M_BAD_JSON");
    client.post("/_matrix/client/v3/login", json!([1, 2])).await.expect_error(400, "M_BAD_JSON");
    // Regression: ruma's login body parser panicked on a missing `type` (a 500).
    client.post("/_matrix/client/v3/login", json!({})).await.expect_error(400, "M_BAD_JSON");
    let untyped = json!({ "user": "alice", "password": "sUp3rs3cret" });
    client.post("/_matrix/client/v3/login", untyped).await.expect_error(400, "M_BAD_JSON");
    let numeric_name =
        json!({ "username": 5, "password": "sUp3rs3cret", "auth": { "type": "m.login.dummy" } });
    client.post("/_matrix/client/v3/register", numeric_name).await.expect_error(400, "M_BAD_JSON");

    let device = format!("/_matrix/client/v3/devices/{}", alice.device_id.as_deref().expect("device"));
    alice.put(&device, json!({ "display_name": 5 })).await.expect_error(400, "M_BAD_JSON");
    let filter = format!("/_matrix/client/v3/user/{}/filter", alice.me());
    alice.post(&filter, json!({ "room": "not an object" })).await.expect_error(400, "M_BAD_JSON");
    alice.post(&filter, json!({ "event_fields": "not a list" })).await.expect_error(400, "M_BAD_JSON");
    let admin = json!({ "nonce": 1, "username": "x", "password": "y", "mac": "z" });
    client.post("/_synapse/admin/v1/register", admin).await.expect_error(400, "M_BAD_JSON");
});

scenario!(bad_4_unknown_paths_are_unrecognized, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    for path in [
        "/_matrix/client/v3/no_such_endpoint",
        "/_matrix/client/unstable/org.example.nothing",
        "/_matrix/federation/v1/no_such_endpoint",
        "/_matrix/federation/v2/send_join/!room:x/$event",
        "/_matrix/key/v2/no_such_endpoint",
        "/_matrix/media/v3/no_such_endpoint",
        "/_matrix/client/v1/media/no_such_endpoint",
    ] {
        for method in [Method::GET, Method::POST] {
            let response = client.request(method.clone(), path, Some(&json!({}))).await;
            assert_eq!(response.status, 404, "{method} {path}: {}", response.body);
            assert_eq!(response.body["errcode"], "M_UNRECOGNIZED", "{method} {path}");
        }
    }
});

scenario!(bad_4_a_wrong_method_on_a_known_path_is_405_unrecognized, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;
    for (method, path) in [
        (Method::DELETE, "/_matrix/client/v3/login"),
        (Method::PUT, "/_matrix/client/versions"),
        (Method::GET, "/_matrix/client/v3/logout"),
        (Method::POST, "/_matrix/client/v3/devices"),
        (Method::POST, "/_matrix/key/v2/server"),
        (Method::PUT, "/_matrix/media/v3/config"),
    ] {
        for who in [&client, &alice] {
            let response = who.request(method.clone(), path, Some(&json!({}))).await;
            assert_eq!(response.status, 405, "{method} {path}: {}", response.body);
            assert_eq!(response.body["errcode"], "M_UNRECOGNIZED", "{method} {path}");
        }
    }
});

scenario!(bad_5_missing_and_unknown_tokens_are_told_apart, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;
    let token = alice.token.clone().expect("token");

    for path in
        ["/_matrix/client/v3/account/whoami", "/_matrix/client/v3/devices", "/_matrix/client/v3/pushrules/"]
    {
        client.get(path).await.expect_error(401, "M_MISSING_TOKEN");
        client.with_token("hth_bogus").get(path).await.expect_error(401, "M_UNKNOWN_TOKEN");
        client.get(&format!("{path}?access_token=hth_bogus")).await.expect_error(401, "M_UNKNOWN_TOKEN");
        client.get(&format!("{path}?access_token={token}")).await.expect_status(200);
    }
    let basic = client
        .send(Method::GET, "/_matrix/client/v3/account/whoami", &[("authorization", "Basic YTpi")], None)
        .await;
    basic.expect_error(401, "M_MISSING_TOKEN");
});

scenario!(request_bodies_over_the_limit_are_too_large, |backend| {
    let hs = TestServer::start_with(backend, |c| c.limits.max_request_bytes = 1024).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;

    let mut big = password_login("alice", "sUp3rs3cret");
    big["padding"] = json!("x".repeat(4096));
    client.post("/_matrix/client/v3/login", big).await.expect_error(413, "M_TOO_LARGE");

    let filter = format!("/_matrix/client/v3/user/{}/filter", alice.me());
    let big_filter = json!({ "event_fields": vec!["content.body"; 200] });
    alice.post(&filter, big_filter).await.expect_error(413, "M_TOO_LARGE");

    let admin = json!({ "nonce": "n", "username": "x", "password": "y".repeat(4096), "mac": "z" });
    client.post("/_synapse/admin/v1/register", admin).await.expect_error(413, "M_TOO_LARGE");

    // Just under the limit is still served.
    client.login("alice", "sUp3rs3cret").await;
});

scenario!(rate_limited_endpoints_answer_429_with_retry_after_ms, |backend| {
    let hs = TestServer::start_with(backend, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.per_second = 1;
        c.rate_limits.burst = 2;
    })
    .await;
    let client = hs.client();

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = client.post("/_matrix/client/v3/login", password_login("nobody", "whatever1")).await;
        statuses.push(response.status);
        if response.status == 429 {
            limited = Some(response);
            break;
        }
    }
    assert_eq!(statuses[..2], [403, 403], "the burst is served: {statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("no request was limited: {statuses:?}"));
    limited.expect_error(429, "M_LIMIT_EXCEEDED");
    let retry_after = limited.body["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(
        (1..=1000).contains(&retry_after),
        "one token per second comes back within a second: {retry_after}"
    );
    let header = limited.headers.get("retry-after").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(header.parse::<u64>().is_ok_and(|secs| secs <= 1), "Retry-After in seconds: {header:?}");

    // Endpoints that are not rate limited keep working.
    client.get("/_matrix/client/versions").await.expect_status(200);
});

scenario!(without_rate_limits_rapid_requests_are_never_limited, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    for _ in 0..30 {
        let response = client.post("/_matrix/client/v3/login", password_login("nobody", "whatever1")).await;
        response.expect_error(403, "M_FORBIDDEN");
    }
});
