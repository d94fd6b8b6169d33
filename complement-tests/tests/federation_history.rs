//! FED-11 (SCENARIOS.md › Federation): the history endpoints answer only servers in the room,
//! and only about events of the room named.

use hearth_complement_tests::{
    FakePeer, TestServer, client::enc, fake_peer::Signing, federation::enable_federation,
    peer_room::PeerRoom, scenario,
};
use reqwest::Method;
use serde_json::{Value, json};

const FED: &str = "/_matrix/federation/v1";

async fn get(peer: &FakePeer, hs: &TestServer, path: &str) -> hearth_complement_tests::Response {
    peer.request(hs, Method::GET, path, None, Signing::Valid).await
}

scenario!(fed_11_history_endpoints_obey_membership_of_the_asking_server, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let alice = hs.client().register("alice", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let other_room = alice.create_room(json!({ "preset": "public_chat" })).await;
    let hello = alice.send_text(&room_id, "hello").await;
    let elsewhere = alice.send_text(&other_room, "elsewhere").await;
    let state_ids = |event_id: &str| format!("{FED}/state_ids/{}?event_id={}", enc(&room_id), enc(event_id));

    // Not in the room yet: refused.
    get(&peer, &hs, &format!("{FED}/event/{}", enc(&hello))).await.expect_error(403, "M_FORBIDDEN");
    get(&peer, &hs, &state_ids(&hello)).await.expect_error(403, "M_FORBIDDEN");

    PeerRoom::join(&peer, &hs, &room_id).await;
    let event = get(&peer, &hs, &format!("{FED}/event/{}", enc(&hello))).await;
    let pdu = &event.expect_status(200)["pdus"][0];
    assert_eq!(pdu["content"]["body"], "hello", "{:?}", event.body);
    let ids = get(&peer, &hs, &state_ids(&hello)).await;
    let ids = ids.expect_status(200);
    assert!(ids["pdu_ids"].as_array().is_some_and(|ids| !ids.is_empty()), "{ids}");
    assert!(ids["auth_chain_ids"].is_array());
    let state = get(&peer, &hs, &format!("{FED}/state/{}?event_id={}", enc(&room_id), enc(&hello))).await;
    assert!(
        state.expect_status(200)["pdus"]
            .as_array()
            .is_some_and(|pdus| pdus.iter().any(|p| p["type"] == "m.room.create"))
    );
    let auth = get(&peer, &hs, &format!("{FED}/event_auth/{}/{}", enc(&room_id), enc(&hello))).await;
    assert!(auth.expect_status(200)["auth_chain"].as_array().is_some_and(|chain| !chain.is_empty()));
    let backfill =
        get(&peer, &hs, &format!("{FED}/backfill/{}?v={}&limit=2", enc(&room_id), enc(&hello))).await;
    let pdus = backfill.expect_status(200)["pdus"].as_array().cloned().unwrap_or_default();
    assert_eq!(pdus.len(), 2, "up to the limit");
    assert_eq!(pdus[0]["content"]["body"], "hello", "newest first");

    // An event of another room, or no event at all: refused.
    get(&peer, &hs, &state_ids(&elsewhere)).await.expect_error(404, "M_NOT_FOUND");
    let without = get(&peer, &hs, &format!("{FED}/state_ids/{}", enc(&room_id))).await;
    assert_eq!(without.status, 400, "{:?}", without.body);
    let body: Value = json!({ "earliest_events": [], "latest_events": [hello], "limit": 5 });
    let path = format!("{FED}/get_missing_events/{}", enc(&other_room));
    peer.request(&hs, Method::POST, &path, Some(&body), Signing::Valid)
        .await
        .expect_error(403, "M_FORBIDDEN");
});

scenario!(fed_11_a_server_sees_only_what_its_users_could_under_history_visibility, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let alice = hs.client().register("alice", "password1234").await;
    let visibility = json!({ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "joined" } });
    let room_id = alice.create_room(json!({ "preset": "public_chat", "initial_state": [visibility] })).await;
    let before = alice.send_text(&room_id, "before the peer joined").await;
    PeerRoom::join(&peer, &hs, &room_id).await;
    let after = alice.send_text(&room_id, "after the peer joined").await;

    get(&peer, &hs, &format!("{FED}/event/{}", enc(&after))).await.expect_status(200);
    get(&peer, &hs, &format!("{FED}/event/{}", enc(&before))).await.expect_error(403, "M_FORBIDDEN");
    let state_ids = format!("{FED}/state_ids/{}?event_id={}", enc(&room_id), enc(&before));
    get(&peer, &hs, &state_ids).await.expect_error(403, "M_FORBIDDEN");

    // Walks through the graph carry what it may not see redacted.
    let backfill =
        get(&peer, &hs, &format!("{FED}/backfill/{}?v={}&limit=10", enc(&room_id), enc(&after))).await;
    let pdus = backfill.expect_status(200)["pdus"].as_array().cloned().unwrap_or_default();
    let messages: Vec<&Value> = pdus.iter().filter(|p| p["type"] == "m.room.message").collect();
    assert_eq!(messages.len(), 2, "{pdus:?}");
    assert_eq!(messages[0]["content"]["body"], "after the peer joined", "newest first, whole");
    assert_eq!(messages[1]["content"], json!({}), "the one before, redacted");
    assert!(messages[1]["signatures"].is_object(), "still a signed event of the graph");
});
