//! Push rules, pushers and notifications (spec: Client-Server API › Push Notifications): the
//! `/pushrules` API over the server-default rule set, `/pushers`, and the notifications that
//! other users' messages cause, read back through `GET /notifications`.

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn rule(kind: &str, rule_id: &str) -> String {
    format!("{V3}/pushrules/global/{kind}/{}", enc(rule_id))
}

async fn say(client: &Client, room_id: &str, txn_id: &str, content: Value) -> String {
    let path = format!("{V3}/rooms/{}/send/m.room.message/{txn_id}", enc(room_id));
    client.put(&path, content).await.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

/// Alice's room with Bob joined, and a third member so that it is not a one-to-one room.
async fn room_with_bob(hs: &TestServer) -> (Client, Client, String) {
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    for member in [&bob, &carol] {
        member.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    }
    (alice, bob, room_id)
}

fn event_ids(notifications: &Value) -> Vec<String> {
    let list = notifications["notifications"].as_array().expect("notifications");
    list.iter().map(|n| n["event"]["event_id"].as_str().expect("event_id").to_owned()).collect()
}

scenario!(push_1_the_server_default_rules_are_served_until_changed, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let all = alice.get(&format!("{V3}/pushrules/")).await;
    let all = all.expect_status(200);
    let overrides = all["global"]["override"].as_array().expect("override rules");
    assert_eq!(overrides[0]["rule_id"], ".m.rule.master", "the master rule comes first");
    assert!(overrides.iter().any(|r| r["rule_id"] == ".m.rule.is_user_mention"));
    let global = alice.get(&format!("{V3}/pushrules/global/")).await;
    assert_eq!(global.expect_status(200)["override"], all["global"]["override"]);

    let master = alice.get(&rule("override", ".m.rule.master")).await;
    assert_eq!(master.expect_status(200)["enabled"], false);
    assert_eq!(master.expect_status(200)["default"], true);
    let enabled = alice.get(&format!("{}/enabled", rule("override", ".m.rule.master"))).await;
    assert_eq!(*enabled.expect_status(200), json!({ "enabled": false }));
    let actions = alice.get(&format!("{}/actions", rule("underride", ".m.rule.message"))).await;
    assert_eq!(*actions.expect_status(200), json!({ "actions": ["notify"] }));
});

scenario!(push_2_user_rules_round_trip_through_the_api_and_account_data, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;

    let cake = json!({ "pattern": "cake*lie", "actions": ["notify"] });
    alice.put(&rule("content", "cake"), cake).await.expect_status(200);
    let stored = alice.get(&rule("content", "cake")).await;
    let stored = stored.expect_status(200);
    assert_eq!(stored["pattern"], "cake*lie");
    assert_eq!(stored["enabled"], true, "new rules are enabled");
    assert_eq!(stored["default"], false);

    // `before` makes the new rule the next more important one.
    let pie = json!({ "pattern": "pie", "actions": [] });
    alice.put(&format!("{}?before=cake", rule("content", "pie")), pie).await.expect_status(200);
    let all = alice.get(&format!("{V3}/pushrules/")).await;
    let ids: Vec<&str> = all.expect_status(200)["global"]["content"]
        .as_array()
        .expect("content rules")
        .iter()
        .map(|r| r["rule_id"].as_str().expect("rule_id"))
        .collect();
    assert_eq!(ids, ["pie", "cake"]);

    alice
        .put(&format!("{}/enabled", rule("content", "cake")), json!({ "enabled": false }))
        .await
        .expect_status(200);
    let enabled = alice.get(&format!("{}/enabled", rule("content", "cake"))).await;
    assert_eq!(*enabled.expect_status(200), json!({ "enabled": false }));
    let highlight = json!({ "actions": ["notify", { "set_tweak": "highlight" }] });
    alice.put(&format!("{}/actions", rule("content", "cake")), highlight.clone()).await.expect_status(200);
    let actions = alice.get(&format!("{}/actions", rule("content", "cake"))).await;
    assert_eq!(*actions.expect_status(200), highlight);
    // Replacing a rule keeps whether it is enabled.
    alice.put(&rule("content", "cake"), json!({ "pattern": "cake", "actions": [] })).await.expect_status(200);
    assert_eq!(alice.get(&rule("content", "cake")).await.expect_status(200)["enabled"], false);

    // Server-default rules can be switched on and off and given other actions.
    alice
        .put(&format!("{}/enabled", rule("override", ".m.rule.master")), json!({ "enabled": true }))
        .await
        .expect_status(200);
    assert_eq!(alice.get(&rule("override", ".m.rule.master")).await.expect_status(200)["enabled"], true);

    // Room and sender rules are named by the room and the user.
    let room_rule = rule("room", "!quiet:example.org");
    alice.put(&room_rule, json!({ "actions": [] })).await.expect_status(200);
    assert_eq!(alice.get(&room_rule).await.expect_status(200)["rule_id"], "!quiet:example.org");

    // The rule set is the m.push_rules account data, which /sync delivers.
    let me = alice.me().to_owned();
    let data = alice.get(&format!("{V3}/user/{}/account_data/m.push_rules", enc(&me))).await;
    let data = data.expect_status(200);
    assert!(data["global"]["content"].as_array().expect("content").iter().any(|r| r["rule_id"] == "cake"));
    assert_eq!(data["global"]["override"][0]["enabled"], true);

    alice.delete(&rule("content", "cake"), json!({})).await.expect_status(200);
    alice.get(&rule("content", "cake")).await.expect_error(404, "M_NOT_FOUND");
    alice.delete(&rule("content", "cake"), json!({})).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(push_3_bad_rule_edits_are_refused, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    // (ruma insists on `conditions` for override rules, though the spec makes them optional.)
    let notify = json!({ "actions": ["notify"], "conditions": [] });

    alice.get(&rule("override", "nope")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&format!("{}/actions", rule("override", "nope"))).await.expect_error(404, "M_NOT_FOUND");
    alice
        .put(&format!("{}/enabled", rule("override", "nope")), json!({ "enabled": true }))
        .await
        .expect_error(404, "M_NOT_FOUND");
    alice
        .put(&format!("{}/actions", rule("override", "nope")), notify.clone())
        .await
        .expect_error(404, "M_NOT_FOUND");

    // Rule IDs starting with a dot belong to the server, and its rules stay.
    alice.put(&rule("override", ".my.rule"), notify.clone()).await.expect_error(400, "M_INVALID_PARAM");
    alice.put(&rule("override", ".m.rule.master"), notify.clone()).await.expect_error(400, "M_INVALID_PARAM");
    alice.delete(&rule("override", ".m.rule.master"), json!({})).await.expect_error(400, "M_INVALID_PARAM");
    alice
        .put(&rule("content", "a\\b"), json!({ "pattern": "x", "actions": [] }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    // Nor can user rules be placed among them.
    let before_default = format!("{}?before=.m.rule.master", rule("override", "mine"));
    alice.put(&before_default, notify.clone()).await.expect_error(400, "M_INVALID_PARAM");
    // A room rule's ID must be a room ID.
    alice
        .put(&rule("room", "not-a-room"), json!({ "actions": [] }))
        .await
        .expect_error(400, "M_INVALID_PARAM");
    // `before` must name an existing rule of that kind.
    let response = alice.put(&format!("{}?before=missing", rule("override", "mine")), notify).await;
    assert_eq!(response.status, 400, "{:?}", response.body);

    // Nothing of that was stored.
    alice.get(&rule("override", "mine")).await.expect_error(404, "M_NOT_FOUND");
    assert_eq!(alice.get(&rule("override", ".m.rule.master")).await.expect_status(200)["enabled"], false);
});

scenario!(push_4_a_mention_notifies_and_highlights_the_mentioned_member, |backend| {
    let hs = TestServer::start(backend).await;
    let (alice, bob, room_id) = room_with_bob(&hs).await;
    let notifications = format!("{V3}/notifications");
    assert!(event_ids(bob.get(&notifications).await.expect_status(200)).is_empty());

    let plain = say(&alice, &room_id, "t1", json!({ "msgtype": "m.text", "body": "hello" })).await;
    let bob_id = bob.me().to_owned();
    let mention = json!({ "msgtype": "m.text", "body": "bob: look", "m.mentions": { "user_ids": [bob_id] } });
    let mentioned = say(&alice, &room_id, "t2", mention).await;

    let listed = bob.get(&notifications).await;
    let listed = listed.expect_status(200);
    assert_eq!(event_ids(listed), [mentioned.clone(), plain.clone()], "newest first");
    let newest = &listed["notifications"][0];
    assert_eq!(newest["room_id"], room_id);
    assert_eq!(newest["read"], false);
    assert_eq!(newest["event"]["content"]["body"], "bob: look");
    assert!(newest["actions"].as_array().expect("actions").iter().any(|a| a["set_tweak"] == "highlight"));
    assert_eq!(listed["notifications"][1]["actions"], json!(["notify"]));

    let highlights = bob.get(&format!("{notifications}?only=highlight")).await;
    assert_eq!(event_ids(highlights.expect_status(200)), std::slice::from_ref(&mentioned));

    // Pages of one, following next_token.
    let first = bob.get(&format!("{notifications}?limit=1")).await;
    let first = first.expect_status(200);
    assert_eq!(event_ids(first), [mentioned]);
    let token = first["next_token"].as_str().expect("next_token");
    let second = bob.get(&format!("{notifications}?limit=1&from={}", enc(token))).await;
    assert_eq!(event_ids(second.expect_status(200)), std::slice::from_ref(&plain));

    // A read receipt on the older one marks it read, not the newer one.
    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&plain));
    bob.post(&receipt, json!({})).await.expect_status(200);
    let after = bob.get(&notifications).await;
    let after = after.expect_status(200);
    assert_eq!(
        (&after["notifications"][0]["read"], &after["notifications"][1]["read"]),
        (&json!(false), &json!(true))
    );

    // The sender is not notified of their own messages.
    assert!(event_ids(alice.get(&notifications).await.expect_status(200)).is_empty());
});

scenario!(push_5_a_silenced_room_stops_notifying, |backend| {
    let hs = TestServer::start(backend).await;
    let (alice, bob, room_id) = room_with_bob(&hs).await;
    let notifications = format!("{V3}/notifications");
    let before = say(&alice, &room_id, "t1", json!({ "msgtype": "m.text", "body": "one" })).await;

    bob.put(&rule("room", &room_id), json!({ "actions": [] })).await.expect_status(200);
    say(&alice, &room_id, "t2", json!({ "msgtype": "m.text", "body": "two" })).await;
    assert_eq!(event_ids(bob.get(&notifications).await.expect_status(200)), [before]);

    // Sender rules apply too: Alice's messages highlight once the room rule is gone.
    bob.delete(&rule("room", &room_id), json!({})).await.expect_status(200);
    let alice_id = alice.me().to_owned();
    let highlight = json!({ "actions": ["notify", { "set_tweak": "highlight" }] });
    bob.put(&rule("sender", &alice_id), highlight).await.expect_status(200);
    let three = say(&alice, &room_id, "t3", json!({ "msgtype": "m.text", "body": "three" })).await;
    let highlights = bob.get(&format!("{notifications}?only=highlight")).await;
    assert_eq!(event_ids(highlights.expect_status(200)), [three]);
});

scenario!(push_6_an_invite_notifies_the_invitee, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({})).await;
    let bob_id = bob.me().to_owned();
    alice
        .post(&format!("{V3}/rooms/{}/invite", enc(&room_id)), json!({ "user_id": bob_id }))
        .await
        .expect_status(200);

    let listed = bob.get(&format!("{V3}/notifications")).await;
    let listed = listed.expect_status(200);
    assert_eq!(listed["notifications"][0]["event"]["type"], "m.room.member");
    assert_eq!(listed["notifications"][0]["event"]["state_key"], bob_id);
});

scenario!(push_7_pushers_are_set_listed_and_deleted, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let pushers = format!("{V3}/pushers");
    let set = format!("{V3}/pushers/set");
    assert_eq!(*alice.get(&pushers).await.expect_status(200), json!({ "pushers": [] }));

    let pusher = json!({
        "pushkey": "key1",
        "kind": "http",
        "app_id": "org.example.app",
        "app_display_name": "Example",
        "device_display_name": "Phone",
        "lang": "en",
        "data": { "url": "https://push.example.org/_matrix/push/v1/notify", "format": "event_id_only" },
    });
    alice.post(&set, pusher.clone()).await.expect_status(200);
    let listed = alice.get(&pushers).await;
    let listed = &listed.expect_status(200)["pushers"];
    assert_eq!(listed.as_array().expect("pushers").len(), 1);
    assert_eq!(listed[0]["pushkey"], "key1");
    assert_eq!(listed[0]["data"]["url"], "https://push.example.org/_matrix/push/v1/notify");

    // A URL that is not a push gateway's is refused.
    let mut bad = pusher.clone();
    bad["data"]["url"] = json!("https://push.example.org/");
    alice.post(&set, bad).await.expect_error(400, "M_INVALID_PARAM");

    // Without `append`, the same app ID and push key move to the user who set them last.
    bob.post(&set, pusher.clone()).await.expect_status(200);
    assert_eq!(*alice.get(&pushers).await.expect_status(200), json!({ "pushers": [] }));
    assert_eq!(bob.get(&pushers).await.expect_status(200)["pushers"].as_array().expect("pushers").len(), 1);

    // `kind: null` deletes.
    let delete = json!({ "pushkey": "key1", "app_id": "org.example.app", "kind": null });
    bob.post(&set, delete).await.expect_status(200);
    assert_eq!(*bob.get(&pushers).await.expect_status(200), json!({ "pushers": [] }));
});
