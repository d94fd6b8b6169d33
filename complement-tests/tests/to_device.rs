//! Send-to-device messaging (SCENARIOS.md › SYNC-8, request half): what `/sendToDevice`
//! accepts and refuses. (Delivery through `/sync`, once and only once, is tested with sync.)

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn send_path(kind: &str, txn_id: &str) -> String {
    format!("{V3}/sendToDevice/{}/{}", enc(kind), enc(txn_id))
}

async fn send(client: &Client, kind: &str, txn_id: &str, messages: Value) -> Response {
    client.put(&send_path(kind, txn_id), json!({ "messages": messages })).await
}

scenario!(sync_8_messages_to_devices_all_devices_and_strangers_are_accepted, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let bob_device = bob.device_id.clone().expect("device");
    let content = json!({ "algorithm": "m.megolm.v1.aes-sha2", "session_key": "abc" });

    let to_bob = json!({ bob.me(): { bob_device.as_str(): content } });
    send(&alice, "m.room_key", "t1", to_bob.clone()).await.expect_status(200);
    // The same transaction again is answered the same way (and delivered once: see SYNC-8).
    send(&alice, "m.room_key", "t1", to_bob.clone()).await.expect_status(200);
    // The same transaction ID for another event type is another request.
    send(&alice, "m.room_key_request", "t1", to_bob).await.expect_status(200);

    let everyone = json!({
        bob.me(): { "*": { "n": 1 } },
        alice.me(): { "*": { "n": 2 }, alice.device_id.as_deref().expect("device"): { "n": 3 } },
        // Devices and users that do not exist, and users of other servers, are not errors.
        hs.user_id("nobody"): { "NODEVICE": {} },
        "@someone:elsewhere.example": { "*": {} },
    });
    send(&alice, "org.example.ping", "t2", everyone).await.expect_status(200);
    send(&alice, "org.example.ping", "t3", json!({})).await.expect_status(200);
});

scenario!(malformed_send_to_device_requests_are_400, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();

    send(&alice, "m.test", "t1", json!({ me.as_str(): { "*": [1, 2] } }))
        .await
        .expect_error(400, "M_BAD_JSON");
    send(&alice, "m.test", "t2", json!({ me.as_str(): { "*": "text" } }))
        .await
        .expect_error(400, "M_BAD_JSON");
    send(&alice, "m.test", "t3", json!({ "not-a-user": { "*": {} } })).await.expect_error(400, "M_BAD_JSON");
    send(&alice, "m.test", "t4", json!({ me.as_str(): [] })).await.expect_error(400, "M_BAD_JSON");
    alice.put(&send_path("m.test", "t5"), json!({})).await.expect_error(400, "M_BAD_JSON");
    let not_json = alice
        .raw(Method::PUT, &send_path("m.test", "t6"), Some(b"{messages".to_vec()), Some("application/json"))
        .await;
    not_json.expect_error(400, "M_NOT_JSON");
    // A refused request does not use up its transaction ID.
    send(&alice, "m.test", "t1", json!({ me.as_str(): { "*": {} } })).await.expect_status(200);

    hs.client()
        .put(&send_path("m.test", "t7"), json!({ "messages": {} }))
        .await
        .expect_error(401, "M_MISSING_TOKEN");
});
