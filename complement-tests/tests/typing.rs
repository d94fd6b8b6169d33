//! Typing notifications (SCENARIOS.md › EPH-1, request half): who may say they are typing, and
//! what the endpoint refuses. (Delivery through `/sync` is tested with sync.)

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn typing_path(room_id: &str, user_id: &str) -> String {
    format!("{V3}/rooms/{}/typing/{}", enc(room_id), enc(user_id))
}

async fn typing(client: &Client, room_id: &str, user_id: &str, body: Value) -> Response {
    client.put(&typing_path(room_id, user_id), body).await
}

scenario!(eph_1_members_set_their_own_typing_state_and_nobody_elses, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let me = alice.me().to_owned();

    typing(&alice, &room_id, &me, json!({ "typing": true, "timeout": 30_000 })).await.expect_status(200);
    // Renewing, stopping and stopping again all succeed.
    typing(&alice, &room_id, &me, json!({ "typing": true, "timeout": 30_000 })).await.expect_status(200);
    typing(&alice, &room_id, &me, json!({ "typing": false })).await.expect_status(200);
    typing(&alice, &room_id, &me, json!({ "typing": false })).await.expect_status(200);
    // An absurd timeout is capped, not refused.
    typing(&alice, &room_id, &me, json!({ "typing": true, "timeout": 1_000_000_000_000_u64 }))
        .await
        .expect_status(200);

    // Not joined: refused, also for a room that does not exist.
    typing(&bob, &room_id, bob.me(), json!({ "typing": true, "timeout": 1000 }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    let nowhere = format!("!nowhere:{}", hs.server_name);
    typing(&bob, &nowhere, bob.me(), json!({ "typing": false })).await.expect_error(403, "M_FORBIDDEN");

    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    typing(&bob, &room_id, bob.me(), json!({ "typing": true, "timeout": 1000 })).await.expect_status(200);
    // Only for oneself, even as a fellow member.
    typing(&bob, &room_id, &me, json!({ "typing": true, "timeout": 1000 }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    typing(&bob, &room_id, &me, json!({ "typing": false })).await.expect_error(403, "M_FORBIDDEN");

    // Leaving ends the right to type there.
    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    typing(&bob, &room_id, bob.me(), json!({ "typing": true, "timeout": 1000 }))
        .await
        .expect_error(403, "M_FORBIDDEN");
});

scenario!(typing_requests_that_are_malformed_are_400, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({})).await;
    let me = alice.me().to_owned();

    typing(&alice, &room_id, "not-a-user-id", json!({ "typing": false }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    typing(&alice, "not-a-room-id", &me, json!({ "typing": false }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    typing(&alice, &room_id, &me, json!({ "typing": "yes" })).await.expect_error(400, "M_BAD_JSON");
    typing(&alice, &room_id, &me, json!({ "timeout": 1000 })).await.expect_error(400, "M_BAD_JSON");
    typing(&alice, &room_id, &me, json!({ "typing": true, "timeout": -5 }))
        .await
        .expect_error(400, "M_BAD_JSON");
    let not_json = alice
        .raw(Method::PUT, &typing_path(&room_id, &me), Some(b"{typing".to_vec()), Some("application/json"))
        .await;
    not_json.expect_error(400, "M_NOT_JSON");

    hs.client()
        .put(&typing_path(&room_id, &me), json!({ "typing": false }))
        .await
        .expect_error(401, "M_MISSING_TOKEN");
});
