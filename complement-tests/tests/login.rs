//! LOG-1..3: login and logout (SCENARIOS.md › Registration, login, account).

use hearth_complement_tests::{TestServer, client::password_login, scenario};
use serde_json::json;

scenario!(log_1_password_login_accepts_full_ids_localparts_and_any_case, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", "sUp3rs3cret").await;

    let types = client.get("/_matrix/client/v3/login").await;
    let flows = types.expect_status(200)["flows"].as_array().expect("flows").clone();
    assert!(flows.iter().any(|f| f["type"] == "m.login.password"), "password login is offered: {flows:?}");

    for identifier in [hs.user_id("alice"), "alice".to_owned(), "ALICE".to_owned()] {
        let response =
            client.post("/_matrix/client/v3/login", password_login(&identifier, "sUp3rs3cret")).await;
        let body = response.expect_status(200);
        assert_eq!(body["user_id"], hs.user_id("alice"), "logging in as {identifier}");
        let token = body["access_token"].as_str().expect("access_token");
        let device_id = body["device_id"].as_str().expect("device_id");

        let whoami = client.with_token(token).get("/_matrix/client/v3/account/whoami").await;
        let whoami = whoami.expect_status(200);
        assert_eq!(whoami["user_id"], hs.user_id("alice"));
        assert_eq!(whoami["device_id"], device_id);
    }
});

scenario!(log_1_login_keeps_the_requested_device_id_and_accepts_the_legacy_user_field, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", "sUp3rs3cret").await;

    let legacy = json!({
        "type": "m.login.password",
        "user": "alice",
        "password": "sUp3rs3cret",
        "device_id": "MYLAPTOP",
    });
    let body = client.post("/_matrix/client/v3/login", legacy).await.expect_status(200).clone();
    assert_eq!(body["device_id"], "MYLAPTOP");
    let token = body["access_token"].as_str().expect("access_token");
    let whoami = client.with_token(token).get("/_matrix/client/r0/account/whoami").await;
    assert_eq!(whoami.expect_status(200)["device_id"], "MYLAPTOP");
});

scenario!(log_2_wrong_password_and_unknown_user_fail_alike, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", "sUp3rs3cret").await;

    let wrong_password = client.post("/_matrix/client/v3/login", password_login("alice", "wrong-one")).await;
    wrong_password.expect_error(403, "M_FORBIDDEN");
    let unknown_user = client.post("/_matrix/client/v3/login", password_login("nobody", "sUp3rs3cret")).await;
    unknown_user.expect_error(403, "M_FORBIDDEN");
    assert_eq!(wrong_password.body, unknown_user.body, "the answers do not reveal which accounts exist");

    let other_server = password_login("@alice:elsewhere.test", "sUp3rs3cret");
    let response = client.post("/_matrix/client/v3/login", other_server).await;
    response.expect_error(403, "M_FORBIDDEN");
    assert_eq!(response.body, unknown_user.body);
});

scenario!(log_3_logout_kills_only_its_token_and_logout_all_kills_every_device, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", "sUp3rs3cret").await;
    let first = client.login("alice", "sUp3rs3cret").await;
    let second = client.login("alice", "sUp3rs3cret").await;

    first.post("/_matrix/client/v3/logout", json!({})).await.expect_status(200);
    first.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    second.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    let devices = second.get("/_matrix/client/v3/devices").await;
    let listed: Vec<&str> = devices.expect_status(200)["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert!(!listed.contains(&first.device_id.as_deref().expect("device")), "the device is gone: {listed:?}");

    let third = client.login("alice", "sUp3rs3cret").await;
    second.post("/_matrix/client/v3/logout/all", json!({})).await.expect_status(200);
    second.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    third.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");

    let again = client.login("alice", "sUp3rs3cret").await;
    again.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
});

scenario!(log_3_logout_without_a_token_is_missing_token, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.post("/_matrix/client/v3/logout", json!({})).await.expect_error(401, "M_MISSING_TOKEN");
    client.post("/_matrix/client/v3/logout/all", json!({})).await.expect_error(401, "M_MISSING_TOKEN");
    let bogus = client.with_token("hth_not_a_real_token");
    bogus.post("/_matrix/client/v3/logout", json!({})).await.expect_error(401, "M_UNKNOWN_TOKEN");
});
