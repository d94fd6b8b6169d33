//! BAD-2 and BAD-3 (SCENARIOS.md › Room versions & bad input): event content Matrix cannot sign
//! (integers beyond ±(2^53−1), floats, NaN, Infinity) and events over 65 536 bytes are refused,
//! for messages and state events alike.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn send_path(room_id: &str, txn_id: &str) -> String {
    format!("{V3}/rooms/{}/send/org.example.test/{txn_id}", enc(room_id))
}

fn state_path(room_id: &str) -> String {
    format!("{V3}/rooms/{}/state/org.example.state/key", enc(room_id))
}

async fn put_raw(client: &Client, path: &str, body: &str) -> Response {
    client.raw(Method::PUT, path, Some(body.as_bytes().to_vec()), Some("application/json")).await
}

/// The number of events `client` can see in the room.
async fn event_count(client: &Client, room_id: &str) -> usize {
    let path = format!("{V3}/rooms/{}/messages?dir=b&limit=1000", enc(room_id));
    client.get(&path).await.expect_status(200)["chunk"].as_array().expect("chunk").len()
}

scenario!(bad_2_numbers_matrix_cannot_sign_are_bad_json, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;
    let before = event_count(&alice, &room_id).await;

    let bad = [
        "9007199254740992",
        "-9007199254740992",
        "18446744073709551616",
        "1.1",
        "1.0",
        "1e3",
        "NaN",
        "Infinity",
        "-Infinity",
    ];
    for (i, number) in bad.iter().enumerate() {
        let body = format!("{{\"body\": \"x\", \"n\": {{\"deep\": [{number}]}}}}");
        let response = put_raw(&alice, &send_path(&room_id, &format!("bad{i}")), &body).await;
        assert_eq!(response.status, 400, "message with {number}: {}", response.body);
        assert_eq!(response.body["errcode"], "M_BAD_JSON", "message with {number}");
        let response = put_raw(&alice, &state_path(&room_id), &body).await;
        assert_eq!(response.status, 400, "state with {number}: {}", response.body);
        assert_eq!(response.body["errcode"], "M_BAD_JSON", "state with {number}");
    }
    assert_eq!(event_count(&alice, &room_id).await, before, "nothing was sent");

    // The extremes that fit are fine.
    for (i, number) in ["9007199254740991", "-9007199254740991"].iter().enumerate() {
        let body = format!("{{\"n\": {number}}}");
        put_raw(&alice, &send_path(&room_id, &format!("ok{i}")), &body).await.expect_status(200);
    }
    put_raw(&alice, &state_path(&room_id), "{\"n\": 9007199254740991}").await.expect_status(200);
});

scenario!(bad_3_events_over_64_kib_are_too_large, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;

    let big: Value = json!({ "body": "x".repeat(70_000) });
    alice.put(&send_path(&room_id, "big"), big.clone()).await.expect_error(413, "M_TOO_LARGE");
    alice.put(&state_path(&room_id), big).await.expect_error(413, "M_TOO_LARGE");
    // Just over the limit once signed, though the content alone is under it.
    let edge: Value = json!({ "body": "x".repeat(65_400) });
    alice.put(&send_path(&room_id, "edge"), edge).await.expect_error(413, "M_TOO_LARGE");

    let fits: Value = json!({ "body": "x".repeat(60_000) });
    alice.put(&send_path(&room_id, "fits"), fits.clone()).await.expect_status(200);
    alice.put(&state_path(&room_id), fits).await.expect_status(200);
});

scenario!(malformed_ids_in_the_path_or_query_are_invalid_parameters, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;

    alice.get("/_matrix/client/v3/rooms/not-a-room-id/messages").await.expect_error(400, "M_INVALID_PARAM");
    let path = format!("/_matrix/client/v3/rooms/{room_id}/event/not-an-event-id");
    alice.get(&path).await.expect_error(400, "M_INVALID_PARAM");
    alice.get("/_matrix/client/v3/profile/not-a-user-id").await.expect_error(400, "M_INVALID_PARAM");
    // A malformed ID inside a JSON body is still a body problem.
    let body = json!({ "user_id": "not-a-user-id" });
    let invite = format!("/_matrix/client/v3/rooms/{room_id}/invite");
    alice.post(&invite, body).await.expect_error(400, "M_BAD_JSON");
});
