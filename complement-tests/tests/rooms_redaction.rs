//! ROOM-11: redactions (SCENARIOS.md › Rooms; spec: Client-Server API › Redactions).

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

async fn send(client: &Client, room: &str, txn: &str, content: Value) -> String {
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(room));
    client.put(&path, content).await.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

fn redact_path(room: &str, event: &str, txn: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/redact/{}/{txn}", enc(room), enc(event))
}

async fn get_event(client: &Client, room: &str, event: &str) -> Value {
    let path = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room), enc(event));
    client.get(&path).await.expect_status(200).clone()
}

async fn join(client: &Client, room: &str) {
    client.post(&format!("/_matrix/client/v3/join/{}", enc(room)), json!({})).await.expect_status(200);
}

scenario!(room_11_a_sender_redacts_their_own_message_and_every_read_shows_it_stripped, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room = alice.create_room(json!({})).await;
    let message = send(&alice, &room, "m1", json!({ "msgtype": "m.text", "body": "oops" })).await;

    // Transaction IDs are scoped to the endpoint: the ID of the /send is new to /redact.
    let response = alice.put(&redact_path(&room, &message, "m1"), json!({ "reason": "typo" })).await;
    let redaction = response.expect_status(200)["event_id"].as_str().expect("event_id").to_owned();
    assert_ne!(redaction, message);
    // The same transaction ID from the same device is the same redaction.
    let again = alice.put(&redact_path(&room, &message, "m1"), json!({ "reason": "typo" })).await;
    assert_eq!(again.expect_status(200)["event_id"], redaction.as_str());

    let event = get_event(&alice, &room, &message).await;
    assert_eq!(event["content"], json!({}), "content stripped: {event}");
    assert_eq!(event["type"], "m.room.message");
    assert_eq!(event["sender"], alice.me());
    let because = &event["unsigned"]["redacted_because"];
    assert_eq!(because["event_id"], redaction.as_str(), "{event}");
    assert_eq!(because["type"], "m.room.redaction");
    assert_eq!(because["content"]["reason"], "typo");
    // Rooms are v12 by default: the target is named in the content (v11+).
    assert_eq!(because["content"]["redacts"], message.as_str());

    let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10", enc(&room));
    let page = alice.get(&path).await.expect_status(200).clone();
    let chunk = page["chunk"].as_array().expect("chunk");
    let ids: Vec<&str> = chunk.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let redactions: Vec<&Value> = chunk.iter().filter(|e| e["event_id"] == redaction.as_str()).collect();
    assert_eq!(redactions.len(), 1, "one redaction event in the timeline: {ids:?}");
    let served =
        chunk.iter().find(|e| e["event_id"] == message.as_str()).expect("the message is still there");
    assert_eq!(served["content"], json!({}), "{served}");
    assert_eq!(served["unsigned"]["redacted_because"]["event_id"], redaction.as_str());
});

scenario!(room_11_redacting_someone_elses_event_needs_the_redact_power_level, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room).await;
    let from_alice = send(&alice, &room, "a1", json!({ "msgtype": "m.text", "body": "mine" })).await;
    let from_bob = send(&bob, &room, "b1", json!({ "msgtype": "m.text", "body": "spam" })).await;

    bob.put(&redact_path(&room, &from_alice, "r1"), json!({})).await.expect_error(403, "M_FORBIDDEN");
    let untouched = get_event(&bob, &room, &from_alice).await;
    assert_eq!(untouched["content"]["body"], "mine", "a refused redaction changes nothing");
    assert!(untouched["unsigned"].get("redacted_because").is_none(), "{untouched}");
    // An unknown event is not found for someone who may only redact their own.
    bob.put(&redact_path(&room, "$nothing-here", "r2"), json!({})).await.expect_error(404, "M_NOT_FOUND");

    // The room creator outranks everyone and may redact bob's message.
    alice.put(&redact_path(&room, &from_bob, "r1"), json!({})).await.expect_status(200);
    let redacted = get_event(&bob, &room, &from_bob).await;
    assert_eq!(redacted["content"], json!({}), "{redacted}");
    assert_eq!(redacted["unsigned"]["redacted_because"]["sender"], alice.me());

    // An event of another room cannot be redacted from this one.
    let other = alice.create_room(json!({})).await;
    alice.put(&redact_path(&other, &from_alice, "r2"), json!({})).await.expect_error(400, "M_UNKNOWN");
    assert_eq!(get_event(&alice, &room, &from_alice).await["content"]["body"], "mine");
});

scenario!(room_11_what_survives_a_redaction_depends_on_the_room_version, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let mut kept_invite = Vec::new();
    for version in ["10", "11"] {
        let body = json!({
            "room_version": version,
            "power_level_content_override": { "invite": 50 },
        });
        let room = alice.create_room(body).await;
        let state = alice.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room))).await;
        let state = state.expect_status(200).as_array().expect("state").clone();
        let pl = state.iter().find(|e| e["type"] == "m.room.power_levels").expect("power levels");
        let pl_event = pl["event_id"].as_str().expect("event_id").to_owned();
        let message = send(&alice, &room, "m1", json!({ "msgtype": "m.text", "body": "x" })).await;
        alice.put(&redact_path(&room, &pl_event, "r1"), json!({})).await.expect_status(200);
        alice.put(&redact_path(&room, &message, "r2"), json!({})).await.expect_status(200);

        let pl = get_event(&alice, &room, &pl_event).await;
        assert!(pl["content"]["users"].is_object(), "v{version}: `users` is protected: {pl}");
        assert_eq!(pl["content"]["state_default"], 50, "v{version}: {pl}");
        kept_invite.push(pl["content"].get("invite").cloned());
        assert_eq!(get_event(&alice, &room, &message).await["content"], json!({}));
    }
    // v11 added `invite` to the protected keys of m.room.power_levels.
    assert_eq!(kept_invite, vec![None, Some(json!(50))]);
});
