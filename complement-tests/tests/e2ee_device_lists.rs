//! KEY-4 (SCENARIOS.md › End-to-end encryption), through `GET /keys/changes`: another member's
//! new device or new keys are listed as `changed`; a user who shares no room any more as `left`.

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const PASSWORD: &str = "passw0rd!";
/// A token from before anything happened: every change so far is after it.
const BEGINNING: &str = "s0_0_0_0_0_0_0";
/// A token from far in the future: nothing is after it.
const FUTURE: &str = "s999999999_0_0_0_0_999999999_0";

async fn changes(client: &Client, from: &str) -> (Vec<String>, Vec<String>) {
    let path = format!("{V3}/keys/changes?from={}&to={}", enc(from), enc(BEGINNING));
    let body = client.get(&path).await.expect_status(200).clone();
    let list = |field: &str| -> Vec<String> {
        body[field].as_array().expect(field).iter().map(|u| u.as_str().expect("user ID").to_owned()).collect()
    };
    (list("changed"), list("left"))
}

async fn join(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/join/{}", enc(room_id)), json!({})).await.expect_status(200);
}

async fn leave(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/rooms/{}/leave", enc(room_id)), json!({})).await.expect_status(200);
}

/// Identity keys for the client's device (the server does not verify their signature).
fn device_keys(client: &Client) -> Value {
    let device_id = client.device_id.clone().expect("a device");
    json!({
        "user_id": client.me(),
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device_id}"): "Y3VydmUyNTUxOSBrZXkgb2YgdGhlIGRldmljZQ",
            format!("ed25519:{device_id}"): "ZWQyNTUxOSBrZXkgb2YgdGhlIGRldmljZSBoZXJl",
        },
        "signatures": { client.me(): { format!("ed25519:{device_id}"): "c2lnbmF0dXJl" } },
    })
}

async fn upload_device_keys(client: &Client) {
    let body = json!({ "device_keys": device_keys(client) });
    client.post(&format!("{V3}/keys/upload"), body).await.expect_status(200);
}

scenario!(key_4_a_room_member_who_uploads_keys_is_changed_and_a_stranger_is_not, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let carol = hs.client().register("carol", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;

    upload_device_keys(&bob).await;
    upload_device_keys(&carol).await;

    let (changed, left) = changes(&alice, BEGINNING).await;
    assert!(changed.contains(&bob.me().to_owned()), "bob shares a room and has new keys: {changed:?}");
    assert!(changed.contains(&alice.me().to_owned()), "alice's own device counts too: {changed:?}");
    assert!(!changed.contains(&carol.me().to_owned()), "carol shares no room with alice: {changed:?}");
    assert!(left.is_empty(), "{left:?}");

    let (changed, left) = changes(&alice, FUTURE).await;
    assert!(
        changed.is_empty() && left.is_empty(),
        "nothing happened after a future token: {changed:?} {left:?}"
    );
});

scenario!(key_4_changes_after_a_sync_token_are_only_the_later_ones, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;
    let since = alice.sync(None, None, 0).await["next_batch"].as_str().expect("next_batch").to_owned();

    let (changed, _) = changes(&alice, &since).await;
    assert!(changed.is_empty(), "nothing changed since the sync: {changed:?}");

    upload_device_keys(&bob).await;
    let (changed, _) = changes(&alice, &since).await;
    assert_eq!(changed, [bob.me()], "bob's new keys");

    let since = alice.sync(None, None, 0).await["next_batch"].as_str().expect("next_batch").to_owned();
    let laptop = hs.client().login("bob", PASSWORD).await;
    let (changed, _) = changes(&alice, &since).await;
    assert!(changed.is_empty(), "a new device without keys changes nothing: {changed:?}");
    let path = format!("{V3}/devices/{}", enc(laptop.device_id.as_deref().expect("device")));
    let auth = hearth_complement_tests::client::password_auth("bob", PASSWORD, None);
    bob.delete(&path, json!({ "auth": auth })).await.expect_status(200);
    let (changed, _) = changes(&alice, &since).await;
    assert_eq!(changed, [bob.me()], "bob deleted a device");
});

scenario!(key_4_a_user_who_left_every_shared_room_is_left, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let carol = hs.client().register("carol", PASSWORD).await;
    let first = alice.create_room(json!({ "preset": "public_chat" })).await;
    let second = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &first).await;
    join(&carol, &first).await;
    join(&carol, &second).await;
    upload_device_keys(&bob).await;

    leave(&bob, &first).await;
    leave(&carol, &first).await;

    let (changed, left) = changes(&alice, BEGINNING).await;
    assert_eq!(left, [bob.me()], "carol still shares the second room");
    assert!(!changed.contains(&bob.me().to_owned()), "bob is no longer tracked: {changed:?}");
    assert!(changed.contains(&carol.me().to_owned()), "carol joined alice's rooms: {changed:?}");

    let (changed, left) = changes(&bob, BEGINNING).await;
    assert!(left.contains(&alice.me().to_owned()) && left.contains(&carol.me().to_owned()), "{left:?}");
    assert_eq!(changed, [bob.me()], "bob only hears of himself now");
});

scenario!(key_4_a_malformed_from_token_is_refused, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    for from in ["nonsense", "s1_x", "s1_2_3_4_5_6_7_8"] {
        let path = format!("{V3}/keys/changes?from={}&to={}", enc(from), enc(BEGINNING));
        alice.get(&path).await.expect_error(400, "M_INVALID_PARAM");
    }
});

scenario!(key_4_new_cross_signing_keys_make_their_owner_changed, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;
    let since = alice.sync(None, None, 0).await["next_batch"].as_str().expect("next_batch").to_owned();

    // The master key alone needs no signature.
    let master = json!({
        "user_id": bob.me(),
        "usage": ["master"],
        "keys": { "ed25519:bWFzdGVyIGtleSBvZiBib2I": "bWFzdGVyIGtleSBvZiBib2I" },
    });
    let path = format!("{V3}/keys/device_signing/upload");
    bob.post(&path, json!({ "master_key": master })).await.expect_status(200);

    let (changed, _) = changes(&alice, &since).await;
    assert_eq!(changed, [bob.me()]);
});
