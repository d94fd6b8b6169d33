//! Read receipts (SCENARIOS.md › EPH-2, request half): which receipts the server accepts, for
//! which events and threads, and what it refuses. (Delivery through `/sync` is tested with
//! sync.)

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn receipt_path(room_id: &str, kind: &str, event_id: &str) -> String {
    format!("{V3}/rooms/{}/receipt/{}/{}", enc(room_id), enc(kind), enc(event_id))
}

async fn receipt(client: &Client, room_id: &str, kind: &str, event_id: &str, body: Value) -> Response {
    client.post(&receipt_path(room_id, kind, event_id), body).await
}

async fn send(client: &Client, room_id: &str, txn_id: &str, content: Value) -> String {
    let path = format!("{V3}/rooms/{}/send/m.room.message/{txn_id}", enc(room_id));
    client.put(&path, content).await.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

fn text(body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body })
}

fn in_thread(root: &str, body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body, "m.relates_to": { "rel_type": "m.thread", "event_id": root } })
}

async fn join(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/rooms/{}/join", enc(room_id)), json!({})).await.expect_status(200);
}

scenario!(eph_2_members_send_public_private_and_threaded_receipts, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;
    let root = send(&alice, &room_id, "t1", text("root")).await;
    let reply = send(&alice, &room_id, "t2", in_thread(&root, "reply")).await;
    let later = send(&alice, &room_id, "t3", text("later")).await;

    for kind in ["m.read", "m.read.private"] {
        receipt(&bob, &room_id, kind, &later, json!({})).await.expect_status(200);
        // Moving back, or repeating, is accepted (and changes nothing).
        receipt(&bob, &room_id, kind, &root, json!({})).await.expect_status(200);
        receipt(&bob, &room_id, kind, &later, json!({})).await.expect_status(200);
        receipt(&bob, &room_id, kind, &later, json!({ "thread_id": "main" })).await.expect_status(200);
        receipt(&bob, &room_id, kind, &root, json!({ "thread_id": root })).await.expect_status(200);
        receipt(&bob, &room_id, kind, &reply, json!({ "thread_id": root })).await.expect_status(200);
    }
    // A client that POSTs with no body at all sends an unthreaded receipt.
    let bare = bob.raw(Method::POST, &receipt_path(&room_id, "m.read", &reply), None, None).await;
    bare.expect_status(200);

    // m.fully_read through the receipt endpoint moves the fully read marker.
    receipt(&bob, &room_id, "m.fully_read", &reply, json!({})).await.expect_status(200);
    let marker = format!("{V3}/user/{}/rooms/{}/account_data/m.fully_read", enc(bob.me()), enc(&room_id));
    assert_eq!(*bob.get(&marker).await.expect_status(200), json!({ "event_id": reply }));

    // /read_markers carries receipts too.
    let markers = json!({ "m.fully_read": later, "m.read": later, "m.read.private": later });
    bob.post(&format!("{V3}/rooms/{}/read_markers", enc(&room_id)), markers).await.expect_status(200);
    assert_eq!(*bob.get(&marker).await.expect_status(200), json!({ "event_id": later }));
});

scenario!(receipts_need_a_joined_member_and_an_event_they_can_see, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let history = json!({ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "joined" } });
    let room_id = alice.create_room(json!({ "preset": "public_chat", "initial_state": [history] })).await;
    let before_bob = send(&alice, &room_id, "t1", text("before bob")).await;

    for kind in ["m.read", "m.read.private", "m.fully_read"] {
        receipt(&bob, &room_id, kind, &before_bob, json!({})).await.expect_error(403, "M_FORBIDDEN");
    }
    join(&bob, &room_id).await;
    let after_bob = send(&alice, &room_id, "t2", text("after bob")).await;

    // History from before the join is hidden from bob: as if it did not exist.
    for kind in ["m.read", "m.read.private", "m.fully_read"] {
        receipt(&bob, &room_id, kind, &before_bob, json!({})).await.expect_error(404, "M_NOT_FOUND");
        receipt(&bob, &room_id, kind, "$nosuchevent", json!({})).await.expect_error(404, "M_NOT_FOUND");
    }
    let other_room = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &other_room).await;
    let elsewhere = send(&alice, &other_room, "t3", text("elsewhere")).await;
    receipt(&bob, &room_id, "m.read", &elsewhere, json!({})).await.expect_error(404, "M_NOT_FOUND");

    // /read_markers checks every event before it writes anything.
    let markers = json!({ "m.fully_read": after_bob, "m.read": before_bob });
    let read_markers = format!("{V3}/rooms/{}/read_markers", enc(&room_id));
    bob.post(&read_markers, markers).await.expect_error(404, "M_NOT_FOUND");
    let marker = format!("{V3}/user/{}/rooms/{}/account_data/m.fully_read", enc(bob.me()), enc(&room_id));
    bob.get(&marker).await.expect_error(404, "M_NOT_FOUND");

    receipt(&bob, &room_id, "m.read", &after_bob, json!({})).await.expect_status(200);
    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    receipt(&bob, &room_id, "m.read", &after_bob, json!({})).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(malformed_receipts_are_400, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({})).await;
    let root = send(&alice, &room_id, "t1", text("root")).await;
    let reply = send(&alice, &room_id, "t2", in_thread(&root, "reply")).await;
    let other_root = send(&alice, &room_id, "t3", text("another root")).await;

    receipt(&alice, &room_id, "m.unknown", &root, json!({})).await.expect_error(400, "M_INVALID_PARAM");
    receipt(&alice, &room_id, "m.read", "not-an-event-id", json!({}))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    receipt(&alice, "not-a-room-id", "m.read", &root, json!({})).await.expect_error(400, "M_INVALID_PARAM");
    // thread_id: a non-empty string naming `main` or a thread root, and not on m.fully_read.
    for thread_id in ["", "somewhere"] {
        let body = json!({ "thread_id": thread_id });
        receipt(&alice, &room_id, "m.read", &root, body).await.expect_error(400, "M_INVALID_PARAM");
    }
    let not_a_string = receipt(&alice, &room_id, "m.read", &root, json!({ "thread_id": 7 })).await;
    assert_eq!(not_a_string.status, 400, "{}", not_a_string.body);
    receipt(&alice, &room_id, "m.fully_read", &root, json!({ "thread_id": "main" }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    // The event must be in the thread named.
    receipt(&alice, &room_id, "m.read", &reply, json!({ "thread_id": "main" }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    receipt(&alice, &room_id, "m.read", &reply, json!({ "thread_id": other_root }))
        .await
        .expect_error(400, "M_INVALID_PARAM");

    let path = receipt_path(&room_id, "m.read", &root);
    alice
        .raw(Method::POST, &path, Some(b"{nope".to_vec()), Some("application/json"))
        .await
        .expect_error(400, "M_NOT_JSON");
    hs.client().post(&path, json!({})).await.expect_error(401, "M_MISSING_TOKEN");
});
