//! Knocks over federation (SCENARIOS.md › Federation FED-6): the resident side of make_knock /
//! send_knock, and a user knocking on another server's room through the client API.

use hearth_complement_tests::{
    Client, Cluster,
    client::enc,
    fake_peer::Signing,
    peer_room::{event_id, resident_with_peer},
    scenario,
};
use reqwest::Method;
use ruma::{CanonicalJsonObject, RoomVersionId};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

/// A private room named "Knock here" that takes knocks.
async fn knock_room(alice: &Client) -> String {
    alice
        .create_room(json!({
            "preset": "private_chat",
            "name": "Knock here",
            "initial_state": [{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } }],
        }))
        .await
}

scenario!(a_remote_user_knocks_on_a_knock_room_and_gets_its_stripped_state, |backend| {
    let (hs, peer, alice, public_room) = resident_with_peer(backend).await;
    let room_id = knock_room(&alice).await;
    let user = format!("@mallory:{}", peer.server_name);
    let make =
        |room: &str| format!("/_matrix/federation/v1/make_knock/{}/{}?ver=12&ver=11", enc(room), enc(&user));

    // A public room takes joins, not knocks.
    peer.request(&hs, Method::GET, &make(&public_room), None, Signing::Valid)
        .await
        .expect_error(403, "M_FORBIDDEN");

    let template = peer.request(&hs, Method::GET, &make(&room_id), None, Signing::Valid).await;
    let template = template.expect_status(200).clone();
    assert_eq!(template["event"]["content"]["membership"], "knock");
    let version =
        RoomVersionId::try_from(template["room_version"].as_str().expect("version")).expect("version");
    let mut knock: CanonicalJsonObject = serde_json::from_value(template["event"].clone()).expect("event");
    peer.sign_pdu(&mut knock, &version);
    let id = event_id(&knock, &version);
    let path = format!("/_matrix/federation/v1/send_knock/{}/{}", enc(&room_id), enc(&id));
    let body = serde_json::to_value(&knock).expect("JSON");
    let answer = peer.request(&hs, Method::PUT, &path, Some(&body), Signing::Valid).await;
    let state = answer.expect_status(200)["knock_room_state"].as_array().cloned().unwrap_or_default();
    assert!(
        state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock here"),
        "{state:?}"
    );

    let member = alice.get(&format!("{V3}/rooms/{}/state/m.room.member/{}", enc(&room_id), enc(&user))).await;
    assert_eq!(member.expect_status(200)["membership"], "knock");
});

scenario!(a_user_knocks_on_a_room_of_another_server_and_sees_the_knock_in_sync, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let room_id = knock_room(&alice).await;
    let path = format!("{V3}/knock/{}?server_name={}", enc(&room_id), enc(&servers[0].server_name));
    bob.post(&path, json!({ "reason": "let me in" })).await.expect_status(200);

    let member =
        alice.get(&format!("{V3}/rooms/{}/state/m.room.member/{}", enc(&room_id), enc(bob.me()))).await;
    let member = member.expect_status(200);
    assert_eq!(
        (member["membership"].as_str(), member["reason"].as_str()),
        (Some("knock"), Some("let me in"))
    );
    let sync = bob.sync(None, None, 0).await;
    let state =
        sync["rooms"]["knock"][&room_id]["knock_state"]["events"].as_array().cloned().unwrap_or_default();
    assert!(
        state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock here"),
        "{sync}"
    );
});
