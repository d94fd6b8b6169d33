//! DEV-1..2: device management (SCENARIOS.md › Devices).

use hearth_complement_tests::{Client, TestServer, client::password_auth, scenario};
use serde_json::{Value, json};

const PASSWORD: &str = "sUp3rs3cret";

/// Logs in `user` with a chosen device ID and display name.
async fn login_device(client: &Client, user: &str, device_id: &str, name: &str) -> Client {
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": PASSWORD,
        "device_id": device_id,
        "initial_device_display_name": name,
    });
    let response = client.post("/_matrix/client/v3/login", body).await;
    let token = response.expect_status(200)["access_token"].as_str().expect("access_token");
    client.with_token(token)
}

/// The device IDs `/devices` lists for the client's user.
async fn device_ids(client: &Client) -> Vec<String> {
    let response = client.get("/_matrix/client/v3/devices").await;
    let devices = response.expect_status(200)["devices"].as_array().expect("devices").clone();
    devices.iter().map(|d| d["device_id"].as_str().expect("device_id").to_owned()).collect()
}

fn find<'a>(devices: &'a Value, device_id: &str) -> Option<&'a Value> {
    devices["devices"].as_array()?.iter().find(|d| d["device_id"] == device_id)
}

scenario!(dev_1_devices_lists_the_login_device_and_renames_it, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    let laptop = login_device(&client, "alice", "LAPTOP", "Alice's laptop").await;

    let listed = laptop.get("/_matrix/client/v3/devices").await.expect_status(200).clone();
    let device = find(&listed, "LAPTOP").expect("the login device is listed");
    assert_eq!(device["display_name"], "Alice's laptop");
    let one = laptop.get("/_matrix/client/v3/devices/LAPTOP").await;
    assert_eq!(one.expect_status(200)["display_name"], "Alice's laptop");

    laptop
        .put("/_matrix/client/v3/devices/LAPTOP", json!({ "display_name": "Work" }))
        .await
        .expect_status(200);
    let one = laptop.get("/_matrix/client/v3/devices/LAPTOP").await;
    let one = one.expect_status(200);
    assert_eq!(one["device_id"], "LAPTOP");
    assert_eq!(one["display_name"], "Work");
    let listed = laptop.get("/_matrix/client/v3/devices").await.expect_status(200).clone();
    assert_eq!(find(&listed, "LAPTOP").expect("still listed")["display_name"], "Work");
});

scenario!(dev_1_a_rename_without_display_name_leaves_the_name_unchanged, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    let laptop = login_device(&client, "alice", "LAPTOP", "Alice's laptop").await;

    // Regression: an absent `display_name` used to erase the name.
    laptop.put("/_matrix/client/v3/devices/LAPTOP", json!({})).await.expect_status(200);
    let one = laptop.get("/_matrix/client/v3/devices/LAPTOP").await;
    assert_eq!(one.expect_status(200)["display_name"], "Alice's laptop");
    laptop.put("/_matrix/client/v3/devices/NOSUCHDEVICE", json!({})).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(dev_1_unknown_and_other_users_devices_are_not_found, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    client.register("bob", PASSWORD).await;
    let alice = login_device(&client, "alice", "ALICEPHONE", "phone").await;
    let bob = login_device(&client, "bob", "BOBPHONE", "phone").await;

    alice.get("/_matrix/client/v3/devices/NOSUCHDEVICE").await.expect_error(404, "M_NOT_FOUND");
    let rename = json!({ "display_name": "x" });
    alice
        .put("/_matrix/client/v3/devices/NOSUCHDEVICE", rename.clone())
        .await
        .expect_error(404, "M_NOT_FOUND");
    alice.get("/_matrix/client/v3/devices/BOBPHONE").await.expect_error(404, "M_NOT_FOUND");
    alice.put("/_matrix/client/v3/devices/BOBPHONE", rename).await.expect_error(404, "M_NOT_FOUND");
    assert_eq!(
        bob.get("/_matrix/client/v3/devices/BOBPHONE").await.expect_status(200)["display_name"],
        "phone"
    );
    assert_eq!(device_ids(&alice).await.iter().filter(|d| *d == "BOBPHONE").count(), 0);
});

scenario!(dev_2_deleting_a_device_needs_the_password_and_kills_its_token, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    let phone = login_device(&client, "alice", "PHONE", "phone").await;
    let laptop = login_device(&client, "alice", "LAPTOP", "laptop").await;

    let challenge = phone.delete("/_matrix/client/v3/devices/LAPTOP", json!({})).await;
    let challenge = challenge.expect_status(401);
    assert_eq!(challenge["flows"], json!([{ "stages": ["m.login.password"] }]));
    let session = challenge["session"].as_str().expect("session").to_owned();
    laptop.get("/_matrix/client/v3/account/whoami").await.expect_status(200);

    let auth = json!({ "auth": password_auth("alice", PASSWORD, Some(&session)) });
    phone.delete("/_matrix/client/v3/devices/LAPTOP", auth).await.expect_status(200);

    laptop.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    phone.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    phone.get("/_matrix/client/v3/devices/LAPTOP").await.expect_error(404, "M_NOT_FOUND");
    assert!(!device_ids(&phone).await.contains(&"LAPTOP".to_owned()));
});

scenario!(dev_2_another_users_password_cannot_authorise_a_deletion, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    client.register("bob", "bobs-passw0rd").await;
    let phone = login_device(&client, "alice", "PHONE", "phone").await;
    let laptop = login_device(&client, "alice", "LAPTOP", "laptop").await;

    let challenge = phone.delete("/_matrix/client/v3/devices/LAPTOP", json!({})).await;
    let session = challenge.expect_status(401)["session"].as_str().expect("session").to_owned();
    let bobs = json!({ "auth": password_auth("bob", "bobs-passw0rd", Some(&session)) });
    let response = phone.delete("/_matrix/client/v3/devices/LAPTOP", bobs).await;
    response.expect_error(401, "M_FORBIDDEN");
    assert_eq!(response.body["flows"], json!([{ "stages": ["m.login.password"] }]));

    let bobs_id = json!({ "auth": password_auth(&hs.user_id("bob"), "bobs-passw0rd", None) });
    phone.delete("/_matrix/client/v3/devices/LAPTOP", bobs_id).await.expect_error(401, "M_FORBIDDEN");
    laptop.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    assert!(device_ids(&phone).await.contains(&"LAPTOP".to_owned()));
});

scenario!(dev_2_another_user_cannot_delete_my_device_with_their_own_password, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    client.register("bob", PASSWORD).await;
    let laptop = login_device(&client, "alice", "LAPTOP", "laptop").await;
    let bob = login_device(&client, "bob", "BOBPHONE", "phone").await;

    let auth = json!({ "auth": password_auth("bob", PASSWORD, None) });
    // Bob has no such device; the spec answers 200 for devices that are already gone.
    bob.delete("/_matrix/client/v3/devices/LAPTOP", auth).await.expect_status(200);
    laptop.get("/_matrix/client/v3/account/whoami").await.expect_status(200);
    assert!(device_ids(&laptop).await.contains(&"LAPTOP".to_owned()));
});

scenario!(dev_2_delete_devices_removes_several_at_once_after_uia, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    client.register("alice", PASSWORD).await;
    let phone = login_device(&client, "alice", "PHONE", "phone").await;
    let laptop = login_device(&client, "alice", "LAPTOP", "laptop").await;
    let tablet = login_device(&client, "alice", "TABLET", "tablet").await;

    let devices = json!({ "devices": ["LAPTOP", "TABLET"] });
    let challenge = phone.post("/_matrix/client/v3/delete_devices", devices).await;
    let session = challenge.expect_status(401)["session"].as_str().expect("session").to_owned();
    let body = json!({
        "devices": ["LAPTOP", "TABLET"],
        "auth": password_auth("alice", PASSWORD, Some(&session)),
    });
    phone.post("/_matrix/client/v3/delete_devices", body).await.expect_status(200);

    laptop.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    tablet.get("/_matrix/client/v3/account/whoami").await.expect_error(401, "M_UNKNOWN_TOKEN");
    let remaining = device_ids(&phone).await;
    assert!(remaining.contains(&"PHONE".to_owned()));
    assert!(!remaining.contains(&"LAPTOP".to_owned()) && !remaining.contains(&"TABLET".to_owned()));
});
