//! What `/sync` delivers besides room events (SCENARIOS.md › EPH-1, EPH-2, SYNC-8): typing,
//! read receipts, to-device messages, unread counts, device lists and one-time key counts.

use std::time::Duration;

use hearth_complement_tests::{
    Client, TestServer,
    client::enc,
    rooms::{ephemeral, next_batch},
    scenario,
};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// Long-polls from `since` until a response satisfies `wanted` (each wake-up may bring only
/// part of the news); the response that did.
async fn sync_until(client: &Client, mut since: String, wanted: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..20 {
        let sync = client.sync(Some(&since), None, 5_000).await;
        if wanted(&sync) {
            return sync;
        }
        since = next_batch(&sync);
    }
    panic!("no sync brought what was expected");
}

fn typing_users(sync: &Value, room_id: &str) -> Option<Vec<String>> {
    ephemeral(sync, room_id).iter().find(|e| e["type"] == "m.typing").map(|e| {
        e["content"]["user_ids"]
            .as_array()
            .expect("user_ids")
            .iter()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect()
    })
}

scenario!(eph_1_typing_reaches_the_room_and_stops, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let elsewhere = carol.create_room(json!({})).await;
    let bob_since = next_batch(&bob.sync(None, None, 0).await);
    let carol_since = next_batch(&carol.sync(None, None, 0).await);

    let typing = format!("{V3}/rooms/{}/typing/{}", enc(&room_id), enc(alice.me()));
    alice.put(&typing, json!({ "typing": true, "timeout": 30_000 })).await.expect_status(200);
    let sync = sync_until(&bob, bob_since, |s| typing_users(s, &room_id).is_some()).await;
    assert_eq!(typing_users(&sync, &room_id), Some(vec![alice.me().to_owned()]));
    let event = ephemeral(&sync, &room_id).iter().find(|e| e["type"] == "m.typing").expect("m.typing");
    assert!(event.get("room_id").is_none(), "ephemeral events carry no room_id");

    alice.put(&typing, json!({ "typing": false })).await.expect_status(200);
    let stopped = sync_until(&bob, next_batch(&sync), |s| typing_users(s, &room_id).is_some()).await;
    assert_eq!(typing_users(&stopped, &room_id), Some(vec![]), "typing off empties the list");

    let carols = carol.sync(Some(&carol_since), None, 300).await;
    assert!(carols["rooms"]["join"].get(&room_id).is_none(), "carol is not in the room: {carols}");
    assert!(typing_users(&carols, &elsewhere).is_none());
});

scenario!(eph_1_typing_expires_after_its_timeout, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let typing = format!("{V3}/rooms/{}/typing/{}", enc(&room_id), enc(alice.me()));
    alice.put(&typing, json!({ "typing": true, "timeout": 300 })).await.expect_status(200);
    let since = next_batch(&bob.sync(None, None, 0).await);
    let expired = sync_until(&bob, since, |s| typing_users(s, &room_id).is_some_and(|u| u.is_empty())).await;
    assert_eq!(typing_users(&expired, &room_id), Some(vec![]));
});

scenario!(eph_2_read_receipts_reach_other_members, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let event_id = bob.send_text(&room_id, "read this").await;
    let since = next_batch(&bob.sync(None, None, 0).await);

    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&event_id));
    alice.post(&receipt, json!({})).await.expect_status(200);
    let has_receipt = |s: &Value| ephemeral(s, &room_id).iter().any(|e| e["type"] == "m.receipt");
    let sync = sync_until(&bob, since.clone(), has_receipt).await;
    let event = ephemeral(&sync, &room_id).iter().find(|e| e["type"] == "m.receipt").expect("m.receipt");
    assert!(event.get("room_id").is_none(), "ephemeral events carry no room_id");
    assert!(event["content"][&event_id]["m.read"][alice.me()]["ts"].is_u64(), "{event}");

    // A private receipt is seen by its owner only.
    let private = format!("{V3}/rooms/{}/receipt/m.read.private/{}", enc(&room_id), enc(&event_id));
    let alice_since = next_batch(&alice.sync(None, None, 0).await);
    bob.post(&private, json!({})).await.expect_status(200);
    let own = sync_until(&bob, next_batch(&sync), has_receipt).await;
    let content =
        &ephemeral(&own, &room_id).iter().find(|e| e["type"] == "m.receipt").expect("own")["content"];
    assert!(content[&event_id]["m.read.private"][bob.me()].is_object(), "{content}");
    let others = alice.sync(Some(&alice_since), None, 300).await;
    assert!(!others.to_string().contains("m.read.private"), "{others}");
});

scenario!(unread_counts_follow_messages_and_read_receipts, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    alice.send_text(&room_id, "hello").await;
    let mention =
        json!({ "msgtype": "m.text", "body": "hello bob", "m.mentions": { "user_ids": [bob.me()] } });
    let path = format!("{V3}/rooms/{}/send/m.room.message/mention", enc(&room_id));
    let last =
        alice.put(&path, mention).await.expect_status(200)["event_id"].as_str().expect("id").to_owned();
    let counts = |s: &Value| s["rooms"]["join"][&room_id]["unread_notifications"].clone();
    let sync = bob.sync(None, None, 0).await;
    assert_eq!(counts(&sync)["notification_count"], 2, "{sync}");
    assert_eq!(counts(&sync)["highlight_count"], 1, "a mention of bob highlights");

    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&last));
    bob.post(&receipt, json!({})).await.expect_status(200);
    let read = bob.sync(None, None, 0).await;
    assert_eq!(counts(&read), json!({ "notification_count": 0, "highlight_count": 0 }));
});

scenario!(sync_8_to_device_messages_arrive_once, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let bob_device = bob.device_id.clone().expect("device");
    let since = next_batch(&bob.sync(None, None, 0).await);

    let send = |txn: &str| format!("{V3}/sendToDevice/org.example.ping/{txn}");
    let to_one = json!({ "messages": { bob.me(): { &bob_device: { "n": 1 } } } });
    alice.put(&send("t1"), to_one.clone()).await.expect_status(200);
    alice.put(&send("t1"), to_one).await.expect_status(200);
    alice.put(&send("t2"), json!({ "messages": { bob.me(): { "*": { "n": 2 } } } })).await.expect_status(200);

    let to_device = |s: &Value| s["to_device"]["events"].as_array().cloned().unwrap_or_default();
    let sync = sync_until(&bob, since, |s| to_device(s).len() >= 2).await;
    let events = to_device(&sync);
    let numbers: Vec<&Value> = events.iter().map(|e| &e["content"]["n"]).collect();
    assert_eq!(numbers, [&json!(1), &json!(2)], "each once, a repeated txn not twice: {sync}");
    assert_eq!(events[0]["sender"], alice.me());
    assert_eq!(events[0]["type"], "org.example.ping");

    let again = bob.sync(Some(&next_batch(&sync)), None, 300).await;
    assert!(to_device(&again).is_empty(), "not redelivered: {again}");
});

scenario!(sync_reports_one_time_key_counts_and_device_list_changes, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let since = next_batch(&alice.sync(None, None, 0).await);

    let bob_device = bob.device_id.clone().expect("device");
    let device_keys = json!({
        "user_id": bob.me(), "device_id": bob_device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
        "keys": { format!("curve25519:{bob_device}"): "abc", format!("ed25519:{bob_device}"): "def" },
        "signatures": { bob.me(): { format!("ed25519:{bob_device}"): "c2lnbmF0dXJl" } },
    });
    let keys = json!({ "device_keys": device_keys, "one_time_keys": { "signed_curve25519:AAAA": {
        "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "signatures": { bob.me(): { format!("ed25519:{bob_device}"): "c2ln" } },
    } } });
    bob.post(&format!("{V3}/keys/upload"), keys).await.expect_status(200);

    let changed =
        |s: &Value| s["device_lists"]["changed"].as_array().is_some_and(|c| c.iter().any(|u| u == bob.me()));
    let sync = tokio::time::timeout(Duration::from_secs(30), sync_until(&alice, since, changed))
        .await
        .expect("in time");
    assert!(changed(&sync));
    let bobs = bob.sync(None, None, 0).await;
    assert_eq!(bobs["device_one_time_keys_count"]["signed_curve25519"], 1, "{bobs}");
});
