//! ROOM-4..7 and ROOM-12 (SCENARIOS.md › Rooms & membership): invites, joins, kicks and bans,
//! power levels, and profile changes reaching every joined room.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

async fn room_post(client: &Client, room_id: &str, action: &str, body: Value) -> Response {
    client.post(&format!("{V3}/rooms/{}/{action}", enc(room_id)), body).await
}

async fn state(client: &Client, room_id: &str, kind: &str, key: &str) -> Response {
    client.get(&format!("{V3}/rooms/{}/state/{kind}/{}", enc(room_id), enc(key))).await
}

async fn put_state(client: &Client, room_id: &str, kind: &str, content: Value) -> Response {
    client.put(&format!("{V3}/rooms/{}/state/{kind}/", enc(room_id)), content).await
}

/// The membership of `user` as `viewer` sees it in the state.
async fn membership(viewer: &Client, room_id: &str, user: &str) -> Value {
    state(viewer, room_id, "m.room.member", user).await.expect_status(200)["membership"].clone()
}

/// Edits the room's power levels as `admin`.
async fn edit_power(admin: &Client, room_id: &str, edit: impl FnOnce(&mut Value)) -> Response {
    let mut levels = state(admin, room_id, "m.room.power_levels", "").await.expect_status(200).clone();
    edit(&mut levels);
    put_state(admin, room_id, "m.room.power_levels", levels).await
}

scenario!(room_4_invite_only_rooms_admit_invitees_and_show_rejections, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;

    room_post(&bob, &room_id, "join", json!({})).await.expect_error(403, "M_FORBIDDEN");
    room_post(&alice, &room_id, "invite", json!({ "user_id": alice.me() }))
        .await
        .expect_error(403, "M_FORBIDDEN");

    room_post(&alice, &room_id, "invite", json!({ "user_id": bob.me() })).await.expect_status(200);
    assert_eq!(membership(&alice, &room_id, bob.me()).await, "invite");
    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);
    assert_eq!(membership(&alice, &room_id, bob.me()).await, "join");
    room_post(&alice, &room_id, "invite", json!({ "user_id": bob.me() }))
        .await
        .expect_error(403, "M_FORBIDDEN");

    room_post(&alice, &room_id, "invite", json!({ "user_id": carol.me() })).await.expect_status(200);
    room_post(&carol, &room_id, "leave", json!({})).await.expect_status(200);
    let members = alice.get(&format!("{V3}/rooms/{}/members", enc(&room_id))).await;
    let chunk = members.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    let carols = chunk.iter().find(|e| e["state_key"] == carol.me()).expect("carol's member event");
    assert_eq!(carols["content"]["membership"], "leave");
    assert_eq!(carols["sender"], carol.me(), "carol rejected the invite herself");
});

scenario!(room_5_joins_by_alias_or_id_keep_extra_content_and_never_double, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat", "room_alias_name": "five" })).await;
    let alias = format!("#five:{}", hs.server_name);

    let extra = json!({ "reason": "saying hi", "org.example.flair": "teapot" });
    let joined = bob.post(&format!("{V3}/join/{}", enc(&alias)), extra).await;
    assert_eq!(joined.expect_status(200)["room_id"], room_id);
    let bobs = state(&alice, &room_id, "m.room.member", bob.me()).await.expect_status(200).clone();
    assert_eq!(bobs["membership"], "join");
    assert_eq!(bobs["reason"], "saying hi");
    assert_eq!(bobs["org.example.flair"], "teapot");

    let by_id = room_post(&carol, &room_id, "join", json!({ "org.example.flair": "cup" })).await;
    assert_eq!(by_id.expect_status(200)["room_id"], room_id);
    assert_eq!(state(&alice, &room_id, "m.room.member", carol.me()).await.body["org.example.flair"], "cup");

    bob.post(&format!("{V3}/join/{}", enc(&room_id)), json!({})).await.expect_status(200);
    let joined = alice.get(&format!("{V3}/rooms/{}/joined_members", enc(&room_id))).await;
    let joined = joined.expect_status(200)["joined"].as_object().expect("joined").clone();
    assert_eq!(joined.len(), 3, "alice, bob, carol once each: {joined:?}");
    let members = alice.get(&format!("{V3}/rooms/{}/members?membership=join", enc(&room_id))).await;
    let bob_events = members.expect_status(200)["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["state_key"] == bob.me())
        .count();
    assert_eq!(bob_events, 1);
});

scenario!(room_6_kicks_and_bans_need_power_and_bans_hold_until_lifted, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);

    room_post(&carol, &room_id, "kick", json!({ "user_id": bob.me() }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    room_post(&carol, &room_id, "ban", json!({ "user_id": bob.me() })).await.expect_error(403, "M_FORBIDDEN");

    room_post(&alice, &room_id, "kick", json!({ "user_id": bob.me(), "reason": "cool off" }))
        .await
        .expect_status(200);
    assert_eq!(membership(&alice, &room_id, bob.me()).await, "leave");
    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);

    let ban = json!({ "user_id": bob.me(), "reason": "spam" });
    room_post(&alice, &room_id, "ban", ban).await.expect_status(200);
    let banned = state(&alice, &room_id, "m.room.member", bob.me()).await.expect_status(200).clone();
    assert_eq!(banned["membership"], "ban");
    assert_eq!(banned["reason"], "spam");
    room_post(&bob, &room_id, "join", json!({})).await.expect_error(403, "M_FORBIDDEN");

    room_post(&alice, &room_id, "unban", json!({ "user_id": bob.me() })).await.expect_status(200);
    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);
    assert_eq!(membership(&alice, &room_id, bob.me()).await, "join");
});

scenario!(room_7_power_levels_gate_state_and_cannot_be_exceeded, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    for user in [&bob, &carol] {
        room_post(user, &room_id, "join", json!({})).await.expect_status(200);
    }

    put_state(&bob, &room_id, "m.room.name", json!({ "name": "bob's" }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    let bob_id = bob.me().to_owned();
    edit_power(&alice, &room_id, |pl| pl["users"][&bob_id] = json!(50)).await.expect_status(200);
    put_state(&bob, &room_id, "m.room.name", json!({ "name": "bob's" })).await.expect_status(200);

    // Bob may grant up to his own level, never above it.
    let carol_id = carol.me().to_owned();
    let above = edit_power(&bob, &room_id, |pl| pl["users"][&carol_id] = json!(51)).await;
    above.expect_error(403, "M_FORBIDDEN");
    let raise_self = edit_power(&bob, &room_id, |pl| pl["users"][&bob_id] = json!(100)).await;
    raise_self.expect_error(403, "M_FORBIDDEN");

    // Dropped from `users`, Bob falls back to `users_default`.
    let demote = edit_power(&alice, &room_id, |pl| {
        pl["users"].as_object_mut().expect("users").remove(&bob_id);
    });
    demote.await.expect_status(200);
    put_state(&bob, &room_id, "m.room.name", json!({ "name": "again" }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    edit_power(&alice, &room_id, |pl| pl["users_default"] = json!(50)).await.expect_status(200);
    put_state(&carol, &room_id, "m.room.name", json!({ "name": "carol's" })).await.expect_status(200);
});

scenario!(room_12_profile_changes_reach_every_joined_room, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let first = alice.create_room(json!({ "preset": "public_chat" })).await;
    let second = alice.create_room(json!({ "preset": "private_chat" })).await;
    let left = bob.create_room(json!({ "preset": "public_chat" })).await;
    room_post(&bob, &first, "join", json!({})).await.expect_status(200);
    room_post(&alice, &left, "join", json!({})).await.expect_status(200);
    room_post(&alice, &left, "leave", json!({})).await.expect_status(200);

    let profile = format!("{V3}/profile/{}", enc(alice.me()));
    alice
        .put(&format!("{profile}/displayname"), json!({ "displayname": "Alice Liddell" }))
        .await
        .expect_status(200);
    alice
        .put(&format!("{profile}/avatar_url"), json!({ "avatar_url": "mxc://example.org/rabbit" }))
        .await
        .expect_status(200);

    let public = hs.client().get(&profile).await;
    let public = public.expect_status(200);
    assert_eq!(public["displayname"], "Alice Liddell");
    assert_eq!(public["avatar_url"], "mxc://example.org/rabbit");

    for room_id in [&first, &second] {
        let member = state(&alice, room_id, "m.room.member", alice.me()).await.expect_status(200).clone();
        assert_eq!(member["membership"], "join", "{room_id}");
        assert_eq!(member["displayname"], "Alice Liddell", "{room_id}");
        assert_eq!(member["avatar_url"], "mxc://example.org/rabbit", "{room_id}");
    }
    let seen_by_bob = state(&bob, &first, "m.room.member", alice.me()).await.expect_status(200).clone();
    assert_eq!(seen_by_bob["displayname"], "Alice Liddell");
    let in_left = state(&bob, &left, "m.room.member", alice.me()).await.expect_status(200).clone();
    assert_eq!(in_left["membership"], "leave", "rooms Alice left are not rejoined");
    assert!(in_left.get("displayname").is_none_or(|name| name != "Alice Liddell"), "{in_left}");
});

scenario!(joining_with_no_request_body_at_all_works, |backend| {
    // matrix-nio POSTs /join with an empty body; the spec's body fields are all optional.
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let created =
        alice.post("/_matrix/client/v3/createRoom", serde_json::json!({ "preset": "public_chat" })).await;
    let room_id = created.expect_status(200)["room_id"].as_str().expect("room_id").to_owned();
    let path = format!("/_matrix/client/v3/join/{room_id}");
    bob.raw(reqwest::Method::POST, &path, None, None).await.expect_status(200);
    let members = alice.get(&format!("/_matrix/client/v3/rooms/{room_id}/joined_members")).await;
    assert!(members.expect_status(200)["joined"].get(bob.me()).is_some(), "bob joined");
});
