//! ROOM-2 and `createRoom` itself (SCENARIOS.md › Rooms & membership; spec: Client-Server API ›
//! Creation): room versions, presets, `is_direct`, `initial_state` and
//! `power_level_content_override`.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// The content of a current state event, as a member sees it.
async fn content(client: &Client, room_id: &str, kind: &str, key: &str) -> Value {
    let path = format!("{V3}/rooms/{}/state/{kind}/{}", enc(room_id), enc(key));
    client.get(&path).await.expect_status(200).clone()
}

async fn send_message(client: &Client, room_id: &str, txn: &str) -> Response {
    let path = format!("{V3}/rooms/{}/send/m.room.message/{txn}", enc(room_id));
    client.put(&path, json!({ "msgtype": "m.text", "body": "hello" })).await
}

scenario!(room_2_room_versions_are_checked_and_creation_content_cannot_override_them, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let create = format!("{V3}/createRoom");

    alice
        .post(&create, json!({ "room_version": "bogus-1" }))
        .await
        .expect_error(400, "M_UNSUPPORTED_ROOM_VERSION");
    alice.post(&create, json!({ "room_version": 10 })).await.expect_error(400, "M_BAD_JSON");

    let capabilities = alice.get(&format!("{V3}/capabilities")).await;
    let default = capabilities.expect_status(200)["capabilities"]["m.room_versions"]["default"].clone();
    let room_id =
        alice.create_room(json!({ "creation_content": { "room_version": "1", "m.federate": false } })).await;
    let create_event = content(&alice, &room_id, "m.room.create", "").await;
    assert_eq!(create_event["room_version"], default, "{create_event}");
    assert_eq!(create_event["m.federate"], false, "other creation_content is kept");
});

scenario!(rooms_of_every_supported_version_accept_messages, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    for version in ["6", "7", "8", "9", "10", "11", "12"] {
        let room_id =
            alice.create_room(json!({ "room_version": version, "preset": "public_chat", "name": "v" })).await;
        assert_eq!(content(&alice, &room_id, "m.room.create", "").await["room_version"], version);
        let sent = send_message(&alice, &room_id, &format!("v{version}")).await;
        let event_id = sent.expect_status(200)["event_id"].as_str().expect("event_id").to_owned();
        let path = format!("{V3}/rooms/{}/event/{}", enc(&room_id), enc(&event_id));
        assert_eq!(alice.get(&path).await.expect_status(200)["content"]["body"], "hello", "v{version}");
        bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
        send_message(&bob, &room_id, &format!("b{version}")).await.expect_status(200);
    }
});

scenario!(presets_set_join_rules_history_and_guest_access, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let cases = [
        (json!({ "preset": "private_chat" }), "invite", "can_join"),
        (json!({ "preset": "trusted_private_chat" }), "invite", "can_join"),
        (json!({ "preset": "public_chat" }), "public", "forbidden"),
        (json!({ "visibility": "private" }), "invite", "can_join"),
        (json!({ "visibility": "public" }), "public", "forbidden"),
    ];
    for (body, join_rule, guest_access) in cases {
        let room_id = alice.create_room(body.clone()).await;
        assert_eq!(
            content(&alice, &room_id, "m.room.join_rules", "").await["join_rule"],
            join_rule,
            "{body}"
        );
        assert_eq!(
            content(&alice, &room_id, "m.room.guest_access", "").await["guest_access"],
            guest_access,
            "{body}"
        );
        let history = content(&alice, &room_id, "m.room.history_visibility", "").await;
        assert_eq!(history["history_visibility"], "shared", "{body}");
    }
});

scenario!(trusted_private_chat_gives_invitees_the_creators_power, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;

    let v11 = json!({ "preset": "trusted_private_chat", "invite": [bob.me()], "room_version": "11" });
    let room_id = alice.create_room(v11).await;
    let levels = content(&alice, &room_id, "m.room.power_levels", "").await;
    assert_eq!(levels["users"][bob.me()], 100, "{levels}");
    assert_eq!(levels["users"][alice.me()], 100, "{levels}");

    // From v12, creators sit outside the power levels: invitees become additional creators.
    let v12 = json!({ "preset": "trusted_private_chat", "invite": [bob.me()], "room_version": "12" });
    let room_id = alice.create_room(v12).await;
    let create_event = content(&alice, &room_id, "m.room.create", "").await;
    assert_eq!(create_event["additional_creators"], json!([bob.me()]), "{create_event}");
    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    let name = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room_id));
    bob.put(&name, json!({ "name": "bob's too" })).await.expect_status(200);
});

scenario!(direct_invites_are_marked_is_direct, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let dm = alice
        .create_room(json!({ "preset": "trusted_private_chat", "invite": [bob.me()], "is_direct": true }))
        .await;
    let invite = content(&alice, &dm, "m.room.member", bob.me()).await;
    assert_eq!(invite["membership"], "invite");
    assert_eq!(invite["is_direct"], true);

    let group = alice.create_room(json!({ "invite": [carol.me()] })).await;
    let invite = content(&alice, &group, "m.room.member", carol.me()).await;
    assert_eq!(invite["membership"], "invite");
    assert!(invite.get("is_direct").is_none_or(|d| d == false), "{invite}");
});

scenario!(initial_state_overrides_the_preset_and_adds_custom_state, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice
        .create_room(json!({
            "preset": "private_chat",
            "name": "named by the request",
            "initial_state": [
                { "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "public" } },
                { "type": "org.example.custom", "state_key": "k", "content": { "x": 1 } },
                { "type": "m.room.name", "state_key": "", "content": { "name": "named by initial_state" } },
            ],
        }))
        .await;
    assert_eq!(content(&alice, &room_id, "m.room.join_rules", "").await["join_rule"], "public");
    assert_eq!(content(&alice, &room_id, "org.example.custom", "k").await["x"], 1);
    assert_eq!(content(&alice, &room_id, "m.room.name", "").await["name"], "named by the request");
    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
});

scenario!(power_level_content_override_replaces_the_defaults_it_names, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let overrides = json!({ "events": { "m.room.topic": 0 }, "events_default": 10 });
    let room_id = alice
        .create_room(json!({ "preset": "public_chat", "power_level_content_override": overrides }))
        .await;
    let levels = content(&alice, &room_id, "m.room.power_levels", "").await;
    assert_eq!(levels["events"], json!({ "m.room.topic": 0 }), "{levels}");
    assert_eq!(levels["events_default"], 10);
    assert_eq!(levels["state_default"], 50, "defaults not named stay");

    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    let topic = format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room_id));
    bob.put(&topic, json!({ "topic": "anyone may" })).await.expect_status(200);
    send_message(&bob, &room_id, "t1").await.expect_error(403, "M_FORBIDDEN");
    send_message(&alice, &room_id, "t1").await.expect_status(200);
});

scenario!(room_3_a_room_created_with_invites_shows_in_the_invitees_sync_with_stripped_state, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let body = json!({ "preset": "private_chat", "name": "Planning", "invite": [bob.me()] });
    let room_id = alice.create_room(body).await;

    let sync = bob.sync(None, None, 0).await;
    assert!(sync["rooms"]["join"].get(&room_id).is_none(), "not joined yet");
    let events =
        sync["rooms"]["invite"][&room_id]["invite_state"]["events"].as_array().expect("invite_state").clone();
    let has = |kind: &str, state_key: &str| {
        events.iter().any(|e| e["type"] == json!(kind) && e["state_key"] == json!(state_key))
    };
    assert!(has("m.room.create", ""), "{events:?}");
    assert!(has("m.room.join_rules", ""), "{events:?}");
    assert!(has("m.room.name", ""), "{events:?}");
    let invite = events
        .iter()
        .find(|e| e["type"] == json!("m.room.member") && e["state_key"] == json!(bob.me()))
        .expect("bob's invite member event");
    assert_eq!(
        (invite["content"]["membership"].clone(), invite["sender"].clone()),
        (json!("invite"), json!(alice.me()))
    );
    assert!(
        events.iter().any(|e| e["type"] == json!("m.room.member") && e["state_key"] == json!(alice.me())),
        "the inviter's member event: {events:?}"
    );
    // Stripped state: no event IDs, signatures or timestamps.
    assert!(
        events.iter().all(|e| e.get("event_id").is_none() && e.get("signatures").is_none()),
        "{events:?}"
    );
});
