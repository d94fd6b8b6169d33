//! What real clients call at start-up (CLIENTS.md › Login page and start-up) and the CORS every
//! browser client needs (CLIENTS.md › Every web client).

use hearth_complement_tests::{Response, TestServer, scenario};
use reqwest::Method;
use serde_json::json;

const ORIGIN: &str = "https://app.example.org";

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The comma-separated items of a header, lower-cased.
fn header_items(response: &Response, name: &str) -> Vec<String> {
    header(response, name).split(',').map(|item| item.trim().to_ascii_lowercase()).collect()
}

#[track_caller]
fn assert_preflight_allowed(response: &Response, path: &str) {
    assert_eq!(response.status, 200, "preflight of {path}: {:?}", response.headers);
    assert_eq!(header(response, "access-control-allow-origin"), "*", "{path}");
    let methods = header_items(response, "access-control-allow-methods");
    for method in ["get", "post", "put", "delete", "options"] {
        assert!(methods.iter().any(|m| m == method), "{path} allows {method}: {methods:?}");
    }
    let headers = header_items(response, "access-control-allow-headers");
    for name in ["authorization", "content-type", "x-requested-with"] {
        assert!(headers.iter().any(|h| h == name), "{path} allows {name}: {headers:?}");
    }
}

scenario!(cors_preflights_are_answered_on_client_and_well_known_routes, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;
    let device = format!("/_matrix/client/v3/devices/{}", alice.device_id.as_deref().expect("device"));
    for (path, method) in [
        ("/_matrix/client/v3/login", "POST"),
        ("/_matrix/client/versions", "GET"),
        (device.as_str(), "DELETE"),
        ("/_matrix/client/v3/account/whoami", "GET"),
        ("/.well-known/matrix/client", "GET"),
        ("/_matrix/media/v3/config", "GET"),
    ] {
        let preflight = [
            ("origin", ORIGIN),
            ("access-control-request-method", method),
            ("access-control-request-headers", "authorization, content-type, x-requested-with"),
        ];
        // A browser sends no credentials with a preflight.
        let response = client.send(Method::OPTIONS, path, &preflight, None).await;
        assert_preflight_allowed(&response, path);
    }
});

scenario!(cors_allow_origin_is_on_ordinary_and_error_responses, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let origin = [("origin", ORIGIN)];
    for (path, status) in [
        ("/_matrix/client/versions", 200),
        ("/.well-known/matrix/client", 200),
        ("/_matrix/client/v3/account/whoami", 401),
        ("/_matrix/client/v3/no_such_endpoint", 404),
        ("/_matrix/key/v2/server", 200),
    ] {
        let response = client.send(Method::GET, path, &origin, None).await;
        assert_eq!(response.status, status, "{path}: {}", response.body);
        assert_eq!(header(&response, "access-control-allow-origin"), "*", "{path}");
    }
    let response = client.send(Method::POST, "/_matrix/client/v3/login", &origin, Some(b"{".to_vec())).await;
    response.expect_error(400, "M_NOT_JSON");
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
});

scenario!(well_known_client_is_valid_json_naming_the_base_url, |backend| {
    let hs =
        TestServer::start_with(backend, |c| c.public_baseurl = "https://matrix.example.org".to_owned()).await;
    let response = hs.client().get("/.well-known/matrix/client").await;
    let body = response.expect_status(200);
    assert_eq!(body["m.homeserver"]["base_url"], "https://matrix.example.org");
    assert!(header(&response, "content-type").starts_with("application/json"), "{:?}", response.headers);
});

scenario!(start_up_calls_of_a_web_client_all_answer, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "sUp3rs3cret").await;

    let rules = alice.get("/_matrix/client/v3/pushrules/").await;
    let global = &rules.expect_status(200)["global"];
    // Every kind is optional in the spec; those present must be lists of rules.
    for kind in ["override", "content", "room", "sender", "underride"] {
        assert!(global[kind].is_null() || global[kind].is_array(), "{kind} rules: {global}");
    }
    let underride = global["underride"].as_array().expect("underride rules");
    assert!(underride.iter().any(|r| r["rule_id"] == ".m.rule.message"), "{global}");
    let overrides = global["override"].as_array().expect("override rules");
    assert!(overrides.iter().any(|r| r["rule_id"] == ".m.rule.master"), "{global}");

    alice.get("/_matrix/client/v3/capabilities").await.expect_status(200);

    let turn = alice.get("/_matrix/client/v3/voip/turnServer").await;
    let turn = turn.expect_status(200);
    assert_eq!(turn["uris"], json!([]), "no TURN server is configured: {turn}");
    assert!(turn["ttl"].is_u64(), "{turn}");

    let devices = alice.get("/_matrix/client/v3/devices").await;
    let devices = devices.expect_status(200)["devices"].as_array().expect("devices").clone();
    assert!(devices.iter().any(|d| d["device_id"] == alice.device_id.as_deref().expect("device")));

    alice.get("/_matrix/client/v3/room_keys/version").await.expect_error(404, "M_NOT_FOUND");
});

scenario!(profiles_answer_for_existing_users_and_404_for_unknown_ones, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;
    client.register("bob", "sUp3rs3cret").await;

    // A user without a display name still has a profile: invite dialogs look users up with it.
    let bob = alice.get(&format!("/_matrix/client/v3/profile/{}", hs.user_id("bob"))).await;
    assert!(bob.expect_status(200).is_object());

    let name = format!("/_matrix/client/v3/profile/{}/displayname", alice.me());
    alice.put(&name, json!({ "displayname": "Alice A." })).await.expect_status(200);
    let own = alice.get(&format!("/_matrix/client/v3/profile/{}", alice.me())).await;
    assert_eq!(own.expect_status(200)["displayname"], "Alice A.");
    let anonymous = client.get(&format!("/_matrix/client/v3/profile/{}", alice.me())).await;
    assert_eq!(anonymous.expect_status(200)["displayname"], "Alice A.");

    let unknown = alice.get(&format!("/_matrix/client/v3/profile/{}", hs.user_id("nobody"))).await;
    unknown.expect_error(404, "M_NOT_FOUND");
    let unknown_name =
        alice.get(&format!("/_matrix/client/v3/profile/{}/displayname", hs.user_id("nobody"))).await;
    unknown_name.expect_error(404, "M_NOT_FOUND");
});

scenario!(media_config_reports_the_upload_limit_on_both_paths, |backend| {
    let hs = TestServer::start_with(backend, |c| c.limits.max_upload_bytes = 123_456).await;
    let alice = hs.client().register("alice", "sUp3rs3cret").await;
    for path in ["/_matrix/media/v3/config", "/_matrix/client/v1/media/config"] {
        let response = alice.get(path).await;
        assert_eq!(response.expect_status(200)["m.upload.size"], 123_456, "{path}");
    }
    hs.client().get("/_matrix/client/v1/media/config").await.expect_error(401, "M_MISSING_TOKEN");
});

scenario!(filters_are_stored_and_returned_only_to_their_owner, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", "sUp3rs3cret").await;
    let bob = client.register("bob", "sUp3rs3cret").await;

    let filter = json!({
        "room": { "timeline": { "limit": 8 }, "state": { "lazy_load_members": true } },
        "event_fields": ["type", "content.body"],
    });
    let path = format!("/_matrix/client/v3/user/{}/filter", alice.me());
    let created = alice.post(&path, filter).await;
    let filter_id = created.expect_status(200)["filter_id"].as_str().expect("filter_id").to_owned();

    let stored = alice.get(&format!("{path}/{filter_id}")).await;
    let stored = stored.expect_status(200);
    assert_eq!(stored["room"]["timeline"]["limit"], 8, "{stored}");
    assert_eq!(stored["room"]["state"]["lazy_load_members"], true, "{stored}");
    assert_eq!(stored["event_fields"], json!(["type", "content.body"]), "{stored}");

    alice.get(&format!("{path}/no-such-filter")).await.expect_error(404, "M_NOT_FOUND");
    bob.get(&format!("{path}/{filter_id}")).await.expect_error(403, "M_FORBIDDEN");
    bob.post(&path, json!({})).await.expect_error(403, "M_FORBIDDEN");
});
