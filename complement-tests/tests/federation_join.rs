//! FED-4 (SCENARIOS.md › Federation): joining a room through another server checks its
//! `send_join` answer: badly signed or unauthorised state is dropped and the join goes on; an
//! answer without a create event, or a room of an unknown version, fails the join.

use hearth_complement_tests::{
    Client, FakePeer, TestServer, client::enc, federation::enable_federation, peer_host::HostedRoom, scenario,
};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

/// A server (federation on) with Bob, a peer hosting a shared room, the room.
async fn setup(backend: hearth_complement_tests::Backend) -> (TestServer, FakePeer, Client, HostedRoom) {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let bob = hs.client().register("bob", "password1234").await;
    let room = HostedRoom::create(&peer, "shared");
    (hs, peer, bob, room)
}

fn join_path(room: &HostedRoom, peer: &FakePeer) -> String {
    format!("{V3}/join/{}?server_name={}", enc(&room.room_id), enc(&peer.server_name))
}

async fn joined_rooms(bob: &Client) -> serde_json::Value {
    bob.get(&format!("{V3}/joined_rooms")).await.expect_status(200)["joined_rooms"].clone()
}

scenario!(fed_4_badly_signed_or_unauthorised_state_is_dropped_and_the_join_goes_on, |backend| {
    let (_hs, peer, bob, mut room) = setup(backend).await;
    let host = room.host.clone();
    room.event(&peer, &host, ("m.room.topic", Some("")), json!({ "topic": "forged" }), true);
    let stranger = format!("@stranger:{}", peer.server_name);
    room.event(&peer, &stranger, ("m.room.name", Some("")), json!({ "name": "not allowed" }), false);
    room.serve(&peer, bob.me());

    bob.post(&join_path(&room, &peer), json!({})).await.expect_status(200);
    let state = |kind: &str| format!("{V3}/rooms/{}/state/{kind}/", enc(&room.room_id));
    bob.get(&state("m.room.topic")).await.expect_error(404, "M_NOT_FOUND");
    bob.get(&state("m.room.name")).await.expect_error(404, "M_NOT_FOUND");
    let rules = bob.get(&state("m.room.join_rules")).await;
    assert_eq!(rules.expect_status(200)["join_rule"], "public", "the rest of the state is there");
});

scenario!(fed_4_an_answer_without_a_create_event_fails_the_join, |backend| {
    let (_hs, peer, bob, room) = setup(backend).await;
    let state: Vec<_> = room.state().into_iter().filter(|e| e["type"] != "m.room.create").collect();
    room.serve_join(&peer, bob.me(), "11", &state);

    let response = bob.post(&join_path(&room, &peer), json!({})).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(joined_rooms(&bob).await, json!([]));
});

scenario!(fed_4_a_room_of_an_unknown_version_fails_the_join, |backend| {
    let (_hs, peer, bob, room) = setup(backend).await;
    room.serve_join(&peer, bob.me(), "999", &room.state());

    let response = bob.post(&join_path(&room, &peer), json!({})).await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(joined_rooms(&bob).await, json!([]));
    assert!(
        peer.requests().iter().all(|r| !r.uri.starts_with("/_matrix/federation/v2/send_join")),
        "no send_join for a version Hearth does not support"
    );
});
