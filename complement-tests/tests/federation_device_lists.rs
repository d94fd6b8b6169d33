//! End-to-end encryption across servers (issue 7; spec: Server-Server API › Device Management,
//! Send-to-device messaging, End-to-End Encryption): device list and cross-signing key changes
//! of a user on one server reach the users sharing a room with them on another through `/sync`'s
//! `device_lists.changed` and `/keys/query`, and to-device messages reach devices on another
//! server once.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use hearth_complement_tests::{
    Client, Cluster, FakePeer, TestServer,
    client::{enc, eventually},
    e2ee::login_with_keys,
    fake_peer::Signing,
    federation::{PASSWORD, alice_and_bob_across_servers},
    peer_room::{PeerRoom, resident_with_peer},
    rooms::next_batch,
    scenario,
};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// Syncs `client` from `since` until `user` is in `device_lists.changed`; the next token.
async fn changed_until(client: &Client, since: &str, user: &str) -> String {
    let what = format!("{user} in device_lists.changed");
    let (_, next) = client
        .sync_until(Some(since), &what, |sync| changed(sync).contains(&user.to_owned()).then_some(()))
        .await;
    next
}

/// The users in a sync response's `device_lists.changed`.
fn changed(sync: &Value) -> Vec<String> {
    let users = sync["device_lists"]["changed"].as_array().map_or(&[][..], Vec::as_slice);
    users.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect()
}

/// The to-device events of a sync response.
fn to_device(sync: &Value) -> Vec<Value> {
    sync["to_device"]["events"].as_array().cloned().unwrap_or_default()
}

/// Syncs `client` from `since` until `count` to-device events arrived; returns them and the
/// next token.
async fn to_device_until(client: &Client, since: Option<&str>, count: usize) -> (Vec<Value>, String) {
    let mut since = since.map(str::to_owned);
    let mut events = Vec::new();
    while events.len() < count {
        let (found, next) = client
            .sync_until(since.as_deref(), "to-device messages", |sync| {
                let found = to_device(sync);
                (!found.is_empty()).then_some(found)
            })
            .await;
        events.extend(found);
        since = Some(next);
    }
    (events, since.expect("a token"))
}

/// `POST /keys/query` for every device of `user`.
async fn query_keys(client: &Client, user: &str) -> Value {
    let body = json!({ "device_keys": { user: [] } });
    client.post(&format!("{V3}/keys/query"), body).await.expect_status(200).clone()
}

/// `PUT /sendToDevice/m.test/{fresh txn}` with `messages`.
async fn send_to_device(client: &Client, messages: Value) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = format!("{V3}/sendToDevice/m.test/d{}", NEXT.fetch_add(1, Ordering::Relaxed));
    client.put(&path, json!({ "messages": messages })).await.expect_status(200);
}

scenario!(a_new_device_of_a_user_on_another_server_reaches_device_lists_and_keys_query, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", PASSWORD).await;
    let bob = hs2.client().register("bob", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let before_join = next_batch(&alice.sync(None, None, 0).await);

    let join = format!("{V3}/join/{}?server_name={}", enc(&room_id), enc(&hs1.server_name));
    bob.post(&join, json!({})).await.expect_status(200);
    // A user Alice starts sharing a room with is one whose devices her client must fetch.
    let since = changed_until(&alice, &before_join, bob.me()).await;

    let (_phone, _key) = login_with_keys(hs2, "bob", PASSWORD, "BOBNEW").await;
    changed_until(&alice, &since, bob.me()).await;
    let queried = query_keys(&alice, bob.me()).await;
    let device = &queried["device_keys"][bob.me()]["BOBNEW"];
    assert_eq!(device["device_id"], "BOBNEW", "{queried}");
    assert_eq!(device["unsigned"]["device_display_name"], "bob's BOBNEW", "{queried}");
});

scenario!(to_device_messages_reach_devices_on_another_server_exactly_once, |backend| {
    let (servers, alice, bob, _room_id) = alice_and_bob_across_servers(backend, |_, _| {}).await;
    let (phone, _key) = login_with_keys(&servers[1], "bob", PASSWORD, "BOBPHONE").await;
    let bob_id = bob.me().to_owned();

    send_to_device(&alice, json!({ &bob_id: { "BOBPHONE": { "n": "phone only" } } })).await;
    send_to_device(&alice, json!({ &bob_id: { "*": { "n": "every device" } } })).await;

    let (events, since) = to_device_until(&phone, None, 2).await;
    let contents: Vec<&Value> = events.iter().map(|e| &e["content"]).collect();
    assert_eq!(contents, [&json!({ "n": "phone only" }), &json!({ "n": "every device" })], "{events:?}");
    for event in &events {
        assert_eq!(event["sender"], alice.me());
        assert_eq!(event["type"], "m.test");
    }
    // Whatever else was on its way to the phone arrives before a last message.
    send_to_device(&alice, json!({ &bob_id: { "BOBPHONE": { "n": "last" } } })).await;
    let (later, _) = to_device_until(&phone, Some(&since), 1).await;
    assert_eq!(later.len(), 1, "each message arrives once: {later:?}");
    assert_eq!(later[0]["content"], json!({ "n": "last" }), "each message arrives once: {later:?}");
    let (first_device, _) = to_device_until(&bob, None, 1).await;
    assert_eq!(first_device.len(), 1, "{first_device:?}");
    assert_eq!(first_device[0]["content"], json!({ "n": "every device" }), "`*` reaches every device");
});

scenario!(cross_signing_keys_of_a_user_on_another_server_reach_device_lists_and_keys_query, |backend| {
    let (_servers, alice, bob, _room_id) = alice_and_bob_across_servers(backend, |_, _| {}).await;
    let since = next_batch(&alice.sync(None, None, 0).await);

    let bob_id = bob.me().to_owned();
    let master = json!({
        "user_id": bob_id,
        "usage": ["master"],
        "keys": { "ed25519:bobsmasterkey": "bobsmasterkey" },
    });
    bob.post(&format!("{V3}/keys/device_signing/upload"), json!({ "master_key": master }))
        .await
        .expect_status(200);

    changed_until(&alice, &since, &bob_id).await;
    let queried = query_keys(&alice, &bob_id).await;
    assert_eq!(queried["master_keys"][&bob_id]["keys"], master["keys"], "{queried}");
});

/// Sends `edus` from `peer` to `hs` in a transaction with this ID.
async fn send_edus(peer: &FakePeer, hs: &TestServer, txn: &str, edus: Value) {
    let body = json!({
        "origin": peer.server_name,
        "origin_server_ts": 1_700_000_000_000_u64,
        "pdus": [],
        "edus": edus,
    });
    let path = format!("/_matrix/federation/v1/send/{txn}");
    peer.request(hs, Method::PUT, &path, Some(&body), Signing::Valid).await.expect_status(200);
}

fn device_list_update(user: &str, stream_id: u64) -> Value {
    json!({
        "edu_type": "m.device_list_update",
        "content": { "user_id": user, "device_id": "DEV", "stream_id": stream_id, "deleted": true },
    })
}

scenario!(another_server_speaks_only_for_its_own_users_devices, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let before_join = next_batch(&alice.sync(None, None, 0).await);
    let room = PeerRoom::join(&peer, &hs, &room_id).await;
    let since = changed_until(&alice, &before_join, &room.user).await;

    // A device of Alice's is not the peer's to announce; Mallory's are.
    send_edus(
        &peer,
        &hs,
        "t1",
        json!([device_list_update(alice.me(), 1), device_list_update(&room.user, 2)]),
    )
    .await;
    let (seen, _) = alice
        .sync_until(Some(&since), "Mallory's device list change", |sync| {
            let changed = changed(sync);
            changed.contains(&room.user).then_some(changed)
        })
        .await;
    assert!(!seen.contains(&alice.me().to_owned()), "a forged change of Alice's devices: {seen:?}");
});

scenario!(to_device_messages_from_another_server_arrive_once_and_only_from_its_users, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    let room = PeerRoom::join(&peer, &hs, &room_id).await;
    let to_device_edu = |sender: &str, message_id: &str, n: u32| {
        json!({
            "edu_type": "m.direct_to_device",
            "content": {
                "sender": sender,
                "type": "m.test",
                "message_id": message_id,
                "messages": { alice.me(): { "*": { "n": n } } },
            },
        })
    };

    let forged = to_device_edu("@eve:elsewhere.test", "m0", 0);
    send_edus(&peer, &hs, "t1", json!([forged, to_device_edu(&room.user, "m1", 1)])).await;
    // The same message in a retried (renamed) transaction is not delivered twice.
    send_edus(
        &peer,
        &hs,
        "t2",
        json!([to_device_edu(&room.user, "m1", 1), to_device_edu(&room.user, "m2", 2)]),
    )
    .await;

    let (events, since) = to_device_until(&alice, None, 2).await;
    let contents: Vec<&Value> = events.iter().map(|e| &e["content"]).collect();
    assert_eq!(contents, [&json!({ "n": 1 }), &json!({ "n": 2 })], "{events:?}");
    assert!(events.iter().all(|e| e["sender"] == room.user.as_str() && e["type"] == "m.test"), "{events:?}");
    let later = alice.sync(Some(&since), None, 0).await;
    assert!(to_device(&later).is_empty(), "nothing else arrived: {later}");
});

/// The content of the first `m.device_list_update` about `device_id` that `hs` sent `peer` and
/// `found` accepts (waits at most 10 s).
async fn device_list_update_sent(peer: &FakePeer, device_id: &str, found: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("an m.device_list_update of {device_id}"), Duration::from_secs(10), || async {
        peer.requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.uri.starts_with("/_matrix/federation/v1/send/"))
            .flat_map(|r| r.body["edus"].as_array().cloned().unwrap_or_default())
            .filter(|edu| edu["edu_type"] == "m.device_list_update")
            .map(|edu| edu["content"].clone())
            .find(|content| content["device_id"] == device_id && found(content))
    })
    .await
}

scenario!(a_local_users_device_changes_go_in_sequence_to_the_servers_sharing_a_room, |backend| {
    let (hs, peer, alice, room_id) = resident_with_peer(backend).await;
    PeerRoom::join(&peer, &hs, &room_id).await;

    let (phone, _key) = login_with_keys(&hs, "alice", PASSWORD, "PHONE").await;
    let added = device_list_update_sent(&peer, "PHONE", |c| c.get("deleted").is_none()).await;
    assert_eq!(added["user_id"], alice.me(), "{added}");
    assert_eq!(added["device_display_name"], "alice's PHONE", "{added}");
    assert_eq!(added["keys"]["device_id"], "PHONE", "the identity keys: {added}");
    let added_id = added["stream_id"].as_u64().expect("a stream_id");

    phone
        .put(&format!("{V3}/devices/PHONE"), json!({ "display_name": "old phone" }))
        .await
        .expect_status(200);
    let renamed = device_list_update_sent(&peer, "PHONE", |c| c["device_display_name"] == "old phone").await;
    assert_eq!(renamed["prev_id"], json!([added_id]), "{renamed}");
    let renamed_id = renamed["stream_id"].as_u64().expect("a stream_id");
    assert!(renamed_id > added_id, "{renamed}");

    phone.post(&format!("{V3}/logout"), json!({})).await.expect_status(200);
    let deleted = device_list_update_sent(&peer, "PHONE", |c| c["deleted"] == true).await;
    assert_eq!(deleted["prev_id"], json!([renamed_id]), "{deleted}");
    let deleted_id = deleted["stream_id"].as_u64().expect("a stream_id");

    // A server that fetches the list afterwards is told where the sequence stands.
    let path = format!("/_matrix/federation/v1/user/devices/{}", enc(alice.me()));
    let devices = peer.request(&hs, Method::GET, &path, None, Signing::Valid).await;
    assert_eq!(devices.expect_status(200)["stream_id"], deleted_id);
});
