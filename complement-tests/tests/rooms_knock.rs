//! Knocking and restricted joins (issue 3; spec: Client-Server API › Knocking on rooms,
//! Restricted rooms): `POST /knock`, invites and withdrawals after a knock, and joins
//! authorised through membership of an allowed room.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// A room whose join rule is `rule` (with `allow`, if any) in room version 10.
async fn room_with_rule(client: &Client, rule: &str, allow: Option<&str>) -> String {
    let mut content = json!({ "join_rule": rule });
    if let Some(room) = allow {
        content["allow"] = json!([{ "type": "m.room_membership", "room_id": room }]);
    }
    let state = json!([{ "type": "m.room.join_rules", "state_key": "", "content": content }]);
    client
        .create_room(json!({ "preset": "private_chat", "room_version": "10", "initial_state": state }))
        .await
}

async fn knock(client: &Client, room_id: &str, body: Value) -> Response {
    client.post(&format!("{V3}/knock/{}", enc(room_id)), body).await
}

async fn room_post(client: &Client, room_id: &str, action: &str, body: Value) -> Response {
    client.post(&format!("{V3}/rooms/{}/{action}", enc(room_id)), body).await
}

/// `user`'s current member event as `viewer` sees it in `/members`.
async fn member_event(viewer: &Client, room_id: &str, user: &str) -> Value {
    let members = viewer.get(&format!("{V3}/rooms/{}/members", enc(room_id))).await;
    let chunk = members.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    chunk.into_iter().find(|e| e["state_key"] == user).expect("member event")
}

scenario!(room_knock_a_knock_is_visible_to_members_and_an_invite_lets_the_knocker_in, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = room_with_rule(&alice, "knock", None).await;

    let knocked = knock(&bob, &room_id, json!({ "reason": "let me in" })).await;
    assert_eq!(knocked.expect_status(200)["room_id"], room_id.as_str());
    let event = member_event(&alice, &room_id, bob.me()).await;
    assert_eq!(event["content"]["membership"], "knock");
    assert_eq!(event["content"]["reason"], "let me in");
    assert_eq!(event["content"]["displayname"], "bob", "the profile's display name is copied");
    assert_eq!(event["sender"], bob.me());

    room_post(&bob, &room_id, "join", json!({})).await.expect_error(403, "M_FORBIDDEN");
    room_post(&alice, &room_id, "invite", json!({ "user_id": bob.me() })).await.expect_status(200);
    assert_eq!(member_event(&alice, &room_id, bob.me()).await["content"]["membership"], "invite");
    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);
    assert_eq!(member_event(&alice, &room_id, bob.me()).await["content"]["membership"], "join");
    knock(&bob, &room_id, json!({})).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(room_knock_public_and_invite_only_rooms_refuse_knocks, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let public = alice.create_room(json!({ "preset": "public_chat" })).await;
    let private = alice.create_room(json!({ "preset": "private_chat" })).await;

    knock(&bob, &public, json!({})).await.expect_error(403, "M_FORBIDDEN");
    knock(&bob, &private, json!({})).await.expect_error(403, "M_FORBIDDEN");
    knock(&bob, "!nowhere:localhost", json!({})).await.expect_error(404, "M_NOT_FOUND");
    let members = alice.get(&format!("{V3}/rooms/{}/members", enc(&private))).await;
    let chunk = members.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    assert!(chunk.iter().all(|e| e["state_key"] != bob.me()), "a refused knock leaves no event");
});

scenario!(room_knock_leaving_withdraws_a_knock_and_the_knocker_may_knock_again, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = room_with_rule(&alice, "knock", None).await;

    // An empty body is a knock without a reason.
    let path = format!("{V3}/knock/{}", enc(&room_id));
    let empty = bob.raw(Method::POST, &path, Some(Vec::new()), Some("application/json")).await;
    empty.expect_status(200);
    room_post(&bob, &room_id, "leave", json!({})).await.expect_status(200);
    let event = member_event(&alice, &room_id, bob.me()).await;
    assert_eq!(event["content"]["membership"], "leave");
    assert_eq!(event["sender"], bob.me(), "bob withdrew the knock himself");
    knock(&bob, &room_id, json!({})).await.expect_status(200);
    assert_eq!(member_event(&alice, &room_id, bob.me()).await["content"]["membership"], "knock");
});

scenario!(room_knock_restricted_rooms_admit_members_of_allowed_rooms_only, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let space = alice.create_room(json!({ "preset": "public_chat" })).await;
    let room_id = room_with_rule(&alice, "restricted", Some(&space)).await;
    room_post(&bob, &space, "join", json!({})).await.expect_status(200);

    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);
    let event = member_event(&alice, &room_id, bob.me()).await;
    assert_eq!(event["content"]["membership"], "join");
    assert_eq!(event["content"]["join_authorised_via_users_server"], alice.me());

    room_post(&carol, &room_id, "join", json!({})).await.expect_error(403, "M_FORBIDDEN");
    knock(&carol, &room_id, json!({})).await.expect_error(403, "M_FORBIDDEN");
    // An invite still lets anyone in.
    room_post(&alice, &room_id, "invite", json!({ "user_id": carol.me() })).await.expect_status(200);
    room_post(&carol, &room_id, "join", json!({})).await.expect_status(200);
    let event = member_event(&alice, &room_id, carol.me()).await;
    assert!(event["content"].get("join_authorised_via_users_server").is_none());
});

scenario!(room_knock_knock_restricted_rooms_allow_both_knocks_and_restricted_joins, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let space = alice.create_room(json!({ "preset": "public_chat" })).await;
    let room_id = room_with_rule(&alice, "knock_restricted", Some(&space)).await;
    room_post(&bob, &space, "join", json!({})).await.expect_status(200);

    room_post(&bob, &room_id, "join", json!({})).await.expect_status(200);
    let event = member_event(&alice, &room_id, bob.me()).await;
    assert_eq!(event["content"]["join_authorised_via_users_server"], alice.me());

    room_post(&carol, &room_id, "join", json!({})).await.expect_error(403, "M_FORBIDDEN");
    knock(&carol, &room_id, json!({})).await.expect_status(200);
    assert_eq!(member_event(&alice, &room_id, carol.me()).await["content"]["membership"], "knock");
    room_post(&alice, &room_id, "invite", json!({ "user_id": carol.me() })).await.expect_status(200);
    room_post(&carol, &room_id, "join", json!({})).await.expect_status(200);
});

scenario!(room_knock_older_room_versions_refuse_knock_rooms, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let state =
        json!([{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } }]);
    let response =
        alice.post(&format!("{V3}/createRoom"), json!({ "room_version": "6", "initial_state": state })).await;
    let room_id = response.expect_status(200)["room_id"].as_str().expect("room_id").to_owned();
    // Version 6 has no knocking: the join rule is stored but a knock fails the auth rules.
    knock(&bob, &room_id, json!({})).await.expect_error(403, "M_FORBIDDEN");
});
