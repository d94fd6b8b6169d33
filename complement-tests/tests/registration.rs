//! REG-1..5: registration (SCENARIOS.md › Registration, login, account).

use hearth_complement_tests::{Client, TestServer, client::admin_mac, scenario, server::SHARED_SECRET};
use serde_json::json;

scenario!(reg_1_empty_register_offers_only_the_dummy_stage, |backend| {
    let hs = TestServer::start(backend).await;
    let response = hs.client().post("/_matrix/client/v3/register", json!({})).await;
    let body = response.expect_status(401);
    assert!(body["session"].is_string(), "a session is handed out: {body}");
    assert_eq!(body["flows"], json!([{ "stages": ["m.login.dummy"] }]));
});

scenario!(reg_2_dummy_registration_lower_cases_and_keeps_the_device_id, |backend| {
    let hs = TestServer::start(backend).await;
    let body = json!({
        "username": "Alice-1",
        "password": "sUp3rs3cret",
        "device_id": "FIXEDDEVICE",
        "auth": { "type": "m.login.dummy" },
    });
    let response = hs.client().post("/_matrix/client/v3/register", body).await;
    let body = response.expect_status(200);
    assert_eq!(body["user_id"], hs.user_id("alice-1"));
    assert_eq!(body["device_id"], "FIXEDDEVICE");
    let token = body["access_token"].as_str().expect("access_token");
    let whoami = hs.client().with_token(token).get("/_matrix/client/v3/account/whoami").await;
    assert_eq!(whoami.expect_status(200)["device_id"], "FIXEDDEVICE");
});

scenario!(reg_3_taken_names_are_refused_and_availability_reported, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("bob", "passw0rd!").await;
    let again = json!({ "username": "bob", "password": "passw0rd!", "auth": { "type": "m.login.dummy" } });
    client.post("/_matrix/client/v3/register", again).await.expect_error(400, "M_USER_IN_USE");
    client.get("/_matrix/client/v3/register/available?username=bob").await.expect_error(400, "M_USER_IN_USE");
    client.get("/_matrix/client/v3/register/available?username=BOB").await.expect_error(400, "M_USER_IN_USE");
    let free = client.get("/_matrix/client/v3/register/available?username=carol").await;
    assert_eq!(free.expect_status(200)["available"], true);
    client
        .get("/_matrix/client/v3/register/available?username=c%40rol")
        .await
        .expect_error(400, "M_INVALID_USERNAME");
});

scenario!(reg_4_invalid_localparts_are_refused_and_odd_valid_ones_accepted, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    for bad in ["a!", "a\"", "a:", "a?", "a\\", "a@", "a[", "a]", "a{", "a|", "a}", "a£", "aé", "a\n", "a'"]
    {
        let body = json!({ "username": bad, "password": "passw0rd!", "auth": { "type": "m.login.dummy" } });
        let response = client.post("/_matrix/client/v3/register", body).await;
        assert_eq!(response.status, 400, "{bad:?}: {}", response.body);
        assert_eq!(response.body["errcode"], "M_INVALID_USERNAME", "{bad:?}");
    }
    for good in ["end.", "end_", "end=", "end-", "end/", "end3"] {
        let registered = client.register(good, "passw0rd!").await;
        assert_eq!(registered.me(), hs.user_id(good));
    }
});

scenario!(reg_5_shared_secret_registration_checks_the_mac_and_burns_nonces, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();

    let ok = client.admin_register("root", "r00tpassword", true).await;
    let body = ok.expect_status(200);
    assert_eq!(body["user_id"], hs.user_id("root"));
    let token = body["access_token"].as_str().expect("access token");
    client.with_token(token).get("/_matrix/client/v3/account/whoami").await.expect_status(200);

    let nonce =
        client.get("/_synapse/admin/v1/register").await.body["nonce"].as_str().expect("nonce").to_owned();
    let wrong =
        json!({ "nonce": nonce, "username": "eve", "password": "passw0rd!", "admin": false, "mac": "00ff" });
    client.post("/_synapse/admin/v1/register", wrong).await.expect_error(403, "M_FORBIDDEN");

    let mac = admin_mac(SHARED_SECRET, &nonce, "eve", "passw0rd!", false);
    let reused =
        json!({ "nonce": nonce, "username": "eve", "password": "passw0rd!", "admin": false, "mac": mac });
    let response = client.post("/_synapse/admin/v1/register", reused).await;
    assert_eq!(response.status, 400, "a used nonce is refused: {}", response.body);
    client.get("/_matrix/client/v3/register/available?username=eve").await.expect_status(200);
});

scenario!(registration_can_be_closed_by_configuration, |backend| {
    let hs = TestServer::start_with(backend, |c| c.registration.enabled = false).await;
    let body = json!({ "username": "x", "password": "passw0rd!", "auth": { "type": "m.login.dummy" } });
    hs.client().post("/_matrix/client/v3/register", body).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(registration_tokens_gate_registration_when_configured, |backend| {
    let hs = TestServer::start_with(backend, |c| c.registration.tokens = vec!["letmein".to_owned()]).await;
    let client: Client = hs.client();
    let first =
        client.post("/_matrix/client/v3/register", json!({ "username": "t", "password": "passw0rd!" })).await;
    let body = first.expect_status(401);
    assert_eq!(body["flows"], json!([{ "stages": ["m.login.registration_token"] }]));
    let session = body["session"].as_str().expect("session");
    let dummy = json!({ "username": "t", "password": "passw0rd!", "auth": { "type": "m.login.dummy", "session": session } });
    assert_eq!(client.post("/_matrix/client/v3/register", dummy).await.status, 401);
    let token = json!({ "username": "t", "password": "passw0rd!",
        "auth": { "type": "m.login.registration_token", "token": "letmein", "session": session } });
    client.post("/_matrix/client/v3/register", token).await.expect_status(200);
    let validity =
        client.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=nope").await;
    assert_eq!(validity.expect_status(200)["valid"], false);
});
