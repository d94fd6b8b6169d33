//! EDUs between two Hearth servers (issue 7): typing notifications, read receipts and presence
//! of users of one server reach the members on the other through `/sync`.

use std::time::Duration;

use hearth_complement_tests::{
    Client,
    client::enc,
    federation::alice_and_bob_across_servers,
    rooms::{ephemeral, next_batch, timeline},
    scenario,
};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// Long-polls `client`'s sync from the start until `pick` finds something in a response.
async fn sync_until(client: &Client, what: &str, pick: impl Fn(&Value) -> Option<Value>) -> Value {
    client.sync_until(None, what, pick).await.0
}

/// An ephemeral event of the room that satisfies `found`.
async fn ephemeral_until(client: &Client, room_id: &str, found: impl Fn(&Value) -> bool) -> Value {
    sync_until(client, "an ephemeral event", |sync| {
        ephemeral(sync, room_id).iter().find(|e| found(e)).cloned()
    })
    .await
}

scenario!(typing_and_read_receipts_reach_the_other_server, |backend| {
    let (_servers, alice, bob, room_id) = alice_and_bob_across_servers(backend, |_, _| {}).await;

    let typing = format!("{V3}/rooms/{}/typing/{}", enc(&room_id), enc(alice.me()));
    alice.put(&typing, json!({ "typing": true, "timeout": 30000 })).await.expect_status(200);
    let me = alice.me().to_owned();
    ephemeral_until(&bob, &room_id, |e| {
        e["type"] == "m.typing"
            && e["content"]["user_ids"].as_array().is_some_and(|ids| ids.contains(&json!(me)))
    })
    .await;

    let message = alice.send_text(&room_id, "read me").await;
    // Bob's server must have the event before Bob can mark it read.
    let event_path = format!("{V3}/rooms/{}/event/{}", enc(&room_id), enc(&message));
    hearth_complement_tests::client::eventually("the message on hs2", Duration::from_secs(20), || async {
        (bob.get(&event_path).await.status == 200).then_some(())
    })
    .await;
    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&message));
    bob.post(&receipt, json!({})).await.expect_status(200);
    let bob_id = bob.me().to_owned();
    ephemeral_until(&alice, &room_id, |e| {
        e["type"] == "m.receipt" && e["content"][&message]["m.read"].get(&bob_id).is_some()
    })
    .await;
});

/// An `m.presence` event of `user` whose content satisfies `found`.
async fn presence_until(client: &Client, user: &str, found: impl Fn(&Value) -> bool) -> Value {
    sync_until(client, "presence", |sync| {
        let events = sync["presence"]["events"].as_array()?;
        events.iter().find(|e| e["sender"] == user && found(&e["content"])).cloned()
    })
    .await
}

scenario!(presence_reaches_the_other_server_both_ways, |backend| {
    let (_servers, alice, bob, _room_id) = alice_and_bob_across_servers(backend, |_, _| {}).await;

    for (from, to, status) in [(&alice, &bob, "in a meeting"), (&bob, &alice, "lunch")] {
        let path = format!("{V3}/presence/{}/status", enc(from.me()));
        let body = json!({ "presence": "unavailable", "status_msg": status });
        from.put(&path, body).await.expect_status(200);
        let seen = presence_until(to, from.me(), |c| c["status_msg"] == status).await;
        assert_eq!(seen["content"]["presence"], "unavailable", "{seen}");
        // The other server answers GET /presence from what it received.
        let got = to.get(&path).await;
        got.expect_status(200);
        assert_eq!(got.body["status_msg"], status, "{:?}", got.body);
    }
});

scenario!(delivery_reaches_the_sender_on_the_other_server, |backend| {
    let (_servers, alice, bob, room_id) = alice_and_bob_across_servers(backend, |_, config| {
        // Bob's `/sync` acknowledges what his previous response carried.
        config.delivery.receipts = serde_json::from_value(json!("all")).expect("a delivery setting");
    })
    .await;
    let message = alice.send_text(&room_id, "did it arrive?").await;
    let since = sync_until(&bob, "the message on hs2", |sync| {
        let seen = timeline(sync, &room_id).iter().any(|e| e["event_id"] == message.as_str());
        seen.then(|| json!(next_batch(sync)))
    })
    .await;
    let since = since.as_str().expect("a next_batch").to_owned();
    bob.sync(Some(&since), None, 0).await;

    let bob_id = bob.me().to_owned();
    let receipt = ephemeral_until(&alice, &room_id, |e| {
        e["type"] == "m.receipt" && e["content"][&message]["io.hearth.delivered"].get(&bob_id).is_some()
    })
    .await;
    assert!(
        receipt["content"][&message]["m.read"].get(&bob_id).is_none(),
        "delivered is not read: {receipt}"
    );
});
