//! Rooms over federation (SCENARIOS.md › Federation): users of two Hearth servers joining one
//! room through the client API and talking in it, each seeing the other's messages through
//! `/sync`, in order and once.

use std::time::{Duration, Instant};

use hearth_complement_tests::{
    Client, Cluster, FakePeer, TestServer,
    client::enc,
    federation::enable_federation,
    peer_host::HostedRoom,
    peer_room::{PeerRoom, event_id},
    rooms::{bodies, next_batch, timeline},
    scenario,
};
use reqwest::Method;
use ruma::RoomVersionId;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const DEADLINE: Duration = Duration::from_secs(20);

/// Follows one user's `/sync` (long-polling, so it waits on the server's notifier, never
/// sleeps) and keeps every message of one room in the order received.
struct Watcher {
    client: Client,
    room_id: String,
    since: Option<String>,
    messages: Vec<String>,
}

impl Watcher {
    fn new(client: &Client, room_id: &str) -> Watcher {
        Watcher { client: client.clone(), room_id: room_id.to_owned(), since: None, messages: Vec::new() }
    }

    /// Syncs until `done(messages)` holds; panics after the deadline.
    async fn until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) -> &[String] {
        let start = Instant::now();
        while !done(&self.messages) {
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}; got {:?}", self.messages);
            let sync = self.client.sync(self.since.as_deref(), None, 2_000).await;
            self.messages.extend(bodies(timeline(&sync, &self.room_id)));
            self.since = Some(next_batch(&sync));
        }
        &self.messages
    }

    /// One more (immediate) sync: nothing new may have come (no duplicates).
    async fn nothing_more(&mut self) {
        let sync = self.client.sync(self.since.as_deref(), None, 0).await;
        assert_eq!(bodies(timeline(&sync, &self.room_id)), Vec::<String>::new(), "after {:?}", self.messages);
    }
}

/// Joins `room_id` through the server `via` (`/join/{roomIdOrAlias}?server_name=`).
async fn join_via(client: &Client, room_id: &str, via: &str) -> Value {
    let path = format!("{V3}/join/{}?server_name={}", enc(room_id), enc(via));
    client.post(&path, json!({})).await.expect_status(200).clone()
}

scenario!(fed_3_a_user_joins_a_room_of_another_server_and_both_see_each_others_messages, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;

    let joined = join_via(&bob, &room_id, &hs1.server_name).await;
    assert_eq!(joined["room_id"], room_id.as_str());

    // Alice's server learns of the join; Bob's sees the room with Alice in it.
    let mut bob_sees = Watcher::new(&bob, &room_id);
    let mut alice_sees = Watcher::new(&alice, &room_id);
    let members =
        bob.get(&format!("{V3}/rooms/{}/joined_members", enc(&room_id))).await.expect_status(200).clone();
    assert!(members["joined"].get(alice.me()).is_some(), "Bob's server knows Alice is joined: {members}");

    alice.send_text(&room_id, "hello from hs1").await;
    bob_sees.until("Alice's first message on hs2", |m| m.len() == 1).await;
    bob.send_text(&room_id, "hello from hs2").await;
    alice_sees.until("Bob's message on hs1", |m| m.contains(&"hello from hs2".to_owned())).await;

    for i in 0..5 {
        alice.send_text(&room_id, &format!("a{i}")).await;
    }
    let everything = ["hello from hs1", "hello from hs2", "a0", "a1", "a2", "a3", "a4"];
    let seen = bob_sees.until("Alice's five messages on hs2", |m| m.len() >= 7).await.to_vec();
    assert_eq!(seen, everything, "in order, once each");
    bob_sees.nothing_more().await;
    let seen = alice_sees.until("everything on hs1", |m| m.len() >= 7).await.to_vec();
    assert_eq!(seen, everything);
    alice_sees.nothing_more().await;
});

scenario!(joining_a_room_the_named_server_does_not_know_is_not_found, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let bob = hs2.client().register("bob", "password1234").await;
    let room_id = format!("!nowhere:{}", hs1.server_name);
    let path = format!("{V3}/join/{}?server_name={}", enc(&room_id), enc(&hs1.server_name));
    bob.post(&path, json!({})).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(an_invite_only_room_refuses_a_remote_join, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;
    let path = format!("{V3}/join/{}?server_name={}", enc(&room_id), enc(&hs1.server_name));
    bob.post(&path, json!({})).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(fed_20_events_for_an_unreachable_server_wait_in_the_outbox_across_a_restart, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join_via(&bob, &room_id, &servers[0].server_name.clone()).await;
    let mut bob_sees = Watcher::new(&bob, &room_id);
    alice.send_text(&room_id, "before").await;
    bob_sees.until("the first message", |m| m.len() == 1).await;

    // hs2 cannot be reached: hs1 keeps what it has for it, also across its own restart.
    let (hs2_name, hs2_url) = (servers[1].server_name.clone(), servers[1].federation_url());
    servers[0].add_federation_peer(&hs2_name, "https://127.0.0.1:9");
    for body in ["m1", "m2", "m3"] {
        alice.send_text(&room_id, body).await;
    }
    servers[0].restart().await;
    servers[0].add_federation_peer(&hs2_name, &hs2_url);
    alice.send_text(&room_id, "m4").await;

    let seen = bob_sees.until("the queued messages", |m| m.len() >= 5).await.to_vec();
    assert_eq!(seen, ["before", "m1", "m2", "m3", "m4"], "in order, none lost");
    bob_sees.nothing_more().await;
});

scenario!(a_remote_member_leaving_is_seen_by_the_resident_server, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join_via(&bob, &room_id, &servers[0].server_name).await;
    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    let path = format!("{V3}/rooms/{}/state/m.room.member/{}", enc(&room_id), enc(bob.me()));
    hearth_complement_tests::client::eventually("Bob's leave on hs1", DEADLINE, || async {
        let member = alice.get(&path).await;
        (member.status == 200 && member.body["membership"] == "leave").then_some(())
    })
    .await;
});

scenario!(fed_13_a_remote_invite_shows_with_stripped_state_and_can_be_accepted_or_rejected, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let carol = hs2.client().register("carol", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat", "name": "Secret" })).await;
    alice.invite_user(&room_id, bob.me()).await;
    alice.invite_user(&room_id, carol.me()).await;

    // Bob's server shows the invite with the room's stripped state.
    let sync = bob.sync(None, None, 0).await;
    let invite = &sync["rooms"]["invite"][&room_id]["invite_state"]["events"];
    let events = invite.as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret"), "{sync}");
    assert!(events.iter().any(|e| e["type"] == "m.room.member"
        && e["state_key"] == bob.me()
        && e["content"]["membership"] == "invite"));

    // Rejecting while no user of hs2 is in the room: make_leave / send_leave to the inviter's
    // server, which has the leave before the client has its answer.
    carol.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    let path = format!("{V3}/rooms/{}/state/m.room.member/{}", enc(&room_id), enc(carol.me()));
    let member = alice.get(&path).await;
    assert_eq!(member.expect_status(200)["membership"], "leave", "answered by send_leave before the client");
    let sync = carol.sync(None, None, 0).await;
    assert!(sync["rooms"]["invite"].get(&room_id).is_none(), "no longer invited: {sync}");

    // Accepting: a join without any server hint goes through the inviter's server.
    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    let mut alice_sees = Watcher::new(&alice, &room_id);
    bob.send_text(&room_id, "thanks for the invite").await;
    alice_sees.until("Bob's message", |m| m.contains(&"thanks for the invite".to_owned())).await;
});

scenario!(a_user_joins_a_remote_room_by_its_alias, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat", "room_alias_name": "lounge" })).await;
    let alias = format!("#lounge:{}", servers[0].server_name);
    let joined = bob.post(&format!("{V3}/join/{}", enc(&alias)), json!({})).await;
    assert_eq!(joined.expect_status(200)["room_id"], room_id.as_str());
    let mut bob_sees = Watcher::new(&bob, &room_id);
    alice.send_text(&room_id, "welcome").await;
    bob_sees.until("Alice's welcome", |m| m == ["welcome"]).await;
});

scenario!(three_servers_share_a_room_and_a_join_through_one_reaches_the_others, |backend| {
    let servers = Cluster::start(backend, 3).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let carol = servers[2].client().register("carol", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join_via(&bob, &room_id, &servers[0].server_name).await;
    let mut bob_sees = Watcher::new(&bob, &room_id);
    // Carol joins through hs1; hs1 passes her join on to hs2 before she says anything.
    join_via(&carol, &room_id, &servers[0].server_name).await;
    let path = format!("{V3}/rooms/{}/state/m.room.member/{}", enc(&room_id), enc(carol.me()));
    hearth_complement_tests::client::eventually("Carol's join on hs2", DEADLINE, || async {
        let member = bob.get(&path).await;
        (member.status == 200 && member.body["membership"] == "join").then_some(())
    })
    .await;
    carol.send_text(&room_id, "hello from hs3").await;
    alice.send_text(&room_id, "hello from hs1").await;
    let seen = bob_sees.until("both messages on hs2", |m| m.len() >= 2).await.to_vec();
    assert!(
        seen.contains(&"hello from hs3".to_owned()) && seen.contains(&"hello from hs1".to_owned()),
        "{seen:?}"
    );
});

/// The `n`th PDU Hearth sent the peer in requests to paths starting with `prefix` (a
/// `send_join` body, or the PDUs of `/send` transactions, in order), with its ID.
async fn sent_to_peer(peer: &FakePeer, prefix: &str, n: usize) -> (String, Value) {
    let pdus = hearth_complement_tests::client::eventually("a PDU sent to the peer", DEADLINE, || async {
        let pdus: Vec<Value> = peer
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.uri.starts_with(prefix))
            .flat_map(|r| match r.body.get("pdus") {
                Some(pdus) => pdus.as_array().cloned().unwrap_or_default(),
                None => vec![r.body],
            })
            .collect();
        (pdus.len() > n).then_some(pdus)
    })
    .await;
    let pdu = pdus[n].clone();
    let id = event_id(&serde_json::from_value(pdu.clone()).expect("canonical JSON"), &RoomVersionId::V11);
    (id, pdu)
}

/// The room's state events, the latest at each key.
fn current_state(room: &HostedRoom) -> Vec<Value> {
    let mut state: Vec<Value> = Vec::new();
    for event in room.state() {
        state.retain(|e| e["type"] != event["type"] || e["state_key"] != event["state_key"]);
        state.push(event);
    }
    state
}

scenario!(a_user_who_left_a_remote_room_and_rejoins_is_not_shown_what_happened_meanwhile_as_new, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    peer.respond(Method::PUT, "/_matrix/federation/v1/send/*", 200, json!({ "pdus": {} }));
    let bob = hs.client().register("bob", "password1234").await;
    let mut room = HostedRoom::create(&peer, "shared");
    room.message(&peer, "before", false);
    room.serve_join(&peer, bob.me(), "11", &current_state(&room));
    join_via(&bob, &room.room_id, &peer.server_name).await;
    room.events.push(sent_to_peer(&peer, "/_matrix/federation/v2/send_join/", 0).await);
    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room.room_id)), json!({})).await.expect_status(200);
    let leave = sent_to_peer(&peer, "/_matrix/federation/v1/send/", 0).await;
    assert_eq!(leave.1["content"]["membership"], "leave");
    room.events.push(leave);

    // While no one of Bob's server is in the room.
    let away_1 = room.message(&peer, "away 1", false);
    let away_2 = room.message(&peer, "away 2", false);
    let away: Vec<Value> = room.events.iter().rev().take(2).rev().map(|(_, e)| e.clone()).collect();
    let since = next_batch(&bob.sync(None, None, 0).await);
    room.serve_join(&peer, bob.me(), "11", &current_state(&room));
    join_via(&bob, &room.room_id, &peer.server_name).await;
    let (rejoin_id, _) = sent_to_peer(&peer, "/_matrix/federation/v2/send_join/", 1).await;

    // A message of the host that had not seen the rejoin yet (after `away 2`); asked for what
    // lies between, the host lists the history from while Bob was away.
    let state = current_state(&room);
    let auth_chain: Vec<Value> = room.events[..4].iter().map(|(_, e)| e.clone()).collect();
    let away_2_pdu = away[1].clone();
    let after = room.message(&peer, "after", false);
    let after_pdu = room.events.last().map(|(_, e)| e.clone()).expect("the message");
    peer.serve_state_at((&room.room_id, &RoomVersionId::V11), &away_2_pdu, &state, &auth_chain);
    let path = format!("/_matrix/federation/v1/get_missing_events/{}", room.room_id);
    peer.respond(Method::POST, &path, 200, json!({ "events": away }));
    let answer = PeerRoom::send(&peer, &hs, "t1", vec![after_pdu]).await;
    assert_eq!(answer.expect_status(200)["pdus"][&after], json!({}), "{:?}", answer.body);

    let mut bob_sees = Watcher {
        client: bob.clone(),
        room_id: room.room_id.clone(),
        since: Some(since.clone()),
        messages: Vec::new(),
    };
    let seen =
        bob_sees.until("the host's message after the rejoin", |m| m.contains(&"after".to_owned())).await;
    assert_eq!(seen, ["after"], "nothing from while Bob was away comes as news");
    let sync = bob.sync(Some(&since), None, 0).await;
    let events = timeline(&sync, &room.room_id);
    assert!(events.iter().any(|e| e["event_id"] == rejoin_id.as_str()), "the rejoin: {sync}");
    assert!(events.iter().all(|e| e["event_id"] != away_1.as_str() && e["event_id"] != away_2.as_str()));

    // The room works both ways: Bob's next message follows the rejoin and the host's message.
    bob.send_text(&room.room_id, "back").await;
    let (_, back) = sent_to_peer(&peer, "/_matrix/federation/v1/send/", 1).await;
    assert_eq!(back["content"]["body"], "back");
    let prev: Vec<&str> =
        back["prev_events"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert!(prev.contains(&after.as_str()), "{prev:?}");
    let messages = format!("{V3}/rooms/{}/messages?dir=b&limit=20", enc(&room.room_id));
    let page = bob.get(&messages).await.expect_status(200).clone();
    let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
    assert_eq!(bodies(&chunk), ["back", "after"], "{page}");
});
