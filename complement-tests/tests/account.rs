//! ACC-1: password change and deactivation through user-interactive authentication
//! (SCENARIOS.md › Registration, login, account).

use hearth_complement_tests::{
    Client, TestServer,
    client::{password_auth, password_login},
    scenario,
};
use serde_json::{Value, json};

const PASSWORD: &str = "old-passw0rd";
const NEW_PASSWORD: &str = "new-passw0rd";

/// Sends `body` without `auth` and returns the UIA session of the 401 challenge, after checking
/// that the challenge offers exactly the password stage.
async fn password_challenge(client: &Client, path: &str, body: Value) -> String {
    let response = client.post(path, body).await;
    let challenge = response.expect_status(401);
    assert_eq!(challenge["flows"], json!([{ "stages": ["m.login.password"] }]), "{challenge}");
    challenge["session"].as_str().expect("a UIA session").to_owned()
}

scenario!(acc_1_password_change_logs_out_other_devices_but_keeps_the_current_one, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let registered = client.register("alice", PASSWORD).await;
    let current = client.login("alice", PASSWORD).await;
    let other = client.login("alice", PASSWORD).await;
    let path = "/_matrix/client/v3/account/password";

    let session = password_challenge(&current, path, json!({ "new_password": NEW_PASSWORD })).await;
    let wrong = json!({
        "new_password": NEW_PASSWORD,
        "auth": password_auth("alice", "not-my-password", Some(&session)),
    });
    let response = current.post(path, wrong).await;
    response.expect_error(401, "M_FORBIDDEN");
    assert_eq!(response.body["session"], session, "the session survives a failed stage");
    let completed = &response.body["completed"];
    assert!(completed.is_null() || completed == &json!([]), "no stage is completed: {completed}");
    client.login("alice", PASSWORD).await;

    let right =
        json!({ "new_password": NEW_PASSWORD, "auth": password_auth("alice", PASSWORD, Some(&session)) });
    current.post(path, right).await.expect_status(200);

    client
        .post("/_matrix/client/v3/login", password_login("alice", PASSWORD))
        .await
        .expect_error(403, "M_FORBIDDEN");
    client.login("alice", NEW_PASSWORD).await;
    current.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    other.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    registered.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
});

scenario!(acc_1_password_change_with_logout_devices_false_keeps_every_session, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let current = client.register("alice", PASSWORD).await;
    let other = client.login("alice", PASSWORD).await;
    let path = "/_matrix/client/v3/account/password";

    let body = json!({ "new_password": NEW_PASSWORD, "logout_devices": false });
    let session = password_challenge(&current, path, body).await;
    let body = json!({
        "new_password": NEW_PASSWORD,
        "logout_devices": false,
        "auth": password_auth(&hs.user_id("alice"), PASSWORD, Some(&session)),
    });
    current.post(path, body).await.expect_status(200);

    other.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    current.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    client
        .post("/_matrix/client/v3/login", password_login("alice", PASSWORD))
        .await
        .expect_error(403, "M_FORBIDDEN");
    client.login("alice", NEW_PASSWORD).await;
});

scenario!(acc_1_password_change_needs_a_token_and_the_users_own_password, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", PASSWORD).await;
    client.register("bob", "bobs-passw0rd").await;
    let path = "/_matrix/client/v3/account/password";

    let anonymous = json!({ "new_password": NEW_PASSWORD, "auth": password_auth("alice", PASSWORD, None) });
    client.post(path, anonymous).await.expect_error(401, "M_MISSING_TOKEN");

    let session = password_challenge(&alice, path, json!({ "new_password": NEW_PASSWORD })).await;
    let bobs = json!({
        "new_password": NEW_PASSWORD,
        "auth": password_auth("bob", "bobs-passw0rd", Some(&session)),
    });
    alice.post(path, bobs).await.expect_error(401, "M_FORBIDDEN");
    client.login("alice", PASSWORD).await;
    client.login("bob", "bobs-passw0rd").await;
});

scenario!(acc_1_a_weak_new_password_is_refused_and_the_old_one_kept, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", PASSWORD).await;
    let path = "/_matrix/client/v3/account/password";

    let session = password_challenge(&alice, path, json!({ "new_password": "short" })).await;
    let body = json!({ "new_password": "short", "auth": password_auth("alice", PASSWORD, Some(&session)) });
    alice.post(path, body).await.expect_error(400, "M_WEAK_PASSWORD");
    client.login("alice", PASSWORD).await;
});

scenario!(acc_1_deactivation_needs_the_right_password_and_then_forbids_login, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let alice = client.register("alice", PASSWORD).await;
    let other = client.login("alice", PASSWORD).await;
    let path = "/_matrix/client/v3/account/deactivate";

    let session = password_challenge(&alice, path, json!({})).await;
    let wrong = json!({ "auth": password_auth("alice", "not-my-password", Some(&session)) });
    alice.post(path, wrong).await.expect_error(401, "M_FORBIDDEN");
    alice.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    client.login("alice", PASSWORD).await;

    let right = json!({ "auth": password_auth("alice", PASSWORD, Some(&session)) });
    let body = alice.post(path, right).await.expect_status(200).clone();
    assert_eq!(body["id_server_unbind_result"], "no-support");

    let login = client.post("/_matrix/client/v3/login", password_login("alice", PASSWORD)).await;
    login.expect_error(403, "M_FORBIDDEN");
    alice.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    other.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    let profile = client.get(&format!("/_matrix/client/v3/profile/{}", hs.user_id("alice"))).await;
    profile.expect_error(404, "M_NOT_FOUND");
    let available = client.get("/_matrix/client/v3/register/available?username=alice").await;
    available.expect_error(400, "M_USER_IN_USE");
});
