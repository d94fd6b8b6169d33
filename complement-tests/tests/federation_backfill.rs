//! FED-12 (SCENARIOS.md › Federation): a user who joined a room late pages `/messages` back past
//! their join, and their server fetches the history from the room's server (`/backfill`),
//! checked like any received event, shown as history visibility allows, fetched once; the same
//! for what was said while no user of their server was in the room, between a leave and a
//! rejoin.

use hearth_complement_tests::{
    Client, Cluster, FakePeer, TestServer,
    client::{enc, eventually},
    federation::enable_federation,
    peer_host::HostedRoom,
    rooms::{bodies, next_batch, timeline},
    scenario,
};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Joins `room_id` through the server `via`.
async fn join_via(client: &Client, room_id: &str, via: &str) {
    let path = format!("{V3}/join/{}?server_name={}", enc(room_id), enc(via));
    client.post(&path, json!({})).await.expect_status(200);
}

/// The `prev_batch` of the room's timeline in an initial sync, and its `next_batch`.
async fn initial_sync(client: &Client, room_id: &str) -> (String, String) {
    let sync = client.sync(None, None, 0).await;
    let timeline = &sync["rooms"]["join"][room_id]["timeline"];
    let prev_batch = timeline["prev_batch"].as_str().unwrap_or_else(|| panic!("no prev_batch: {timeline}"));
    (prev_batch.to_owned(), next_batch(&sync))
}

/// The `prev_batch` of the room's timeline in an initial sync.
async fn prev_batch(client: &Client, room_id: &str) -> String {
    initial_sync(client, room_id).await.0
}

/// Every event `/messages` returns paging backwards from `from`, 10 at a time, newest first,
/// until a page has no `end`.
async fn page_back(client: &Client, room_id: &str, from: &str) -> Vec<Value> {
    let (mut from, mut events) = (from.to_owned(), Vec::new());
    for _ in 0..50 {
        let path = format!("{V3}/rooms/{}/messages?dir=b&limit=10&from={}", enc(room_id), enc(&from));
        let page = client.get(&path).await.expect_status(200).clone();
        events.extend(page["chunk"].as_array().cloned().unwrap_or_default());
        match page["end"].as_str() {
            Some(end) => from = end.to_owned(),
            None => return events,
        }
    }
    panic!("/messages never ended: {events:?}");
}

/// The bodies of the messages among `events`, oldest first.
fn messages_oldest_first(events: &[Value]) -> Vec<String> {
    let mut bodies: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    bodies.reverse();
    bodies
}

/// How many `/backfill` requests `server` answered, from its `/metrics`.
async fn backfills_served(server: &TestServer) -> u64 {
    let metrics = server.client().get("/metrics").await;
    metrics
        .text
        .lines()
        .filter(|line| line.starts_with("hearth_http_requests_total") && line.contains("/backfill/"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

scenario!(fed_12_a_late_joiner_pages_back_into_history_backfilled_from_the_room_server, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let visibility = json!({ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "shared" } });
    let room_id = alice.create_room(json!({ "preset": "public_chat", "initial_state": [visibility] })).await;
    let sent: Vec<String> = (1..=30).map(|i| format!("message {i}")).collect();
    for body in &sent {
        alice.send_text(&room_id, body).await;
    }
    join_via(&bob, &room_id, &hs1.server_name).await;
    let (from, since) = initial_sync(&bob, &room_id).await;

    let events = page_back(&bob, &room_id, &from).await;
    assert_eq!(messages_oldest_first(&events), sent, "Alice's messages, in order, once each");
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "no event twice");
    assert_eq!(events.last().map(|e| &e["type"]), Some(&json!("m.room.create")), "down to the room's start");
    let served = backfills_served(hs1).await;
    assert!(served > 0, "hs2 asked hs1 for the history");

    // The history is here now: paging again asks no one.
    let again = page_back(&bob, &room_id, &from).await;
    assert_eq!(again, events);
    assert_eq!(backfills_served(hs1).await, served, "no second /backfill");
    // Nothing backfilled shows in /sync as new, incremental or initial.
    let incremental = bob.sync(Some(&since), None, 0).await;
    assert_eq!(timeline(&incremental, &room_id), &[] as &[Value], "{incremental}");
    let initial = bob.sync(None, None, 0).await;
    let events = timeline(&initial, &room_id);
    assert!(events.iter().all(|e| e["type"] != "m.room.message"), "{events:?}");
});

scenario!(fed_12_under_joined_visibility_a_late_joiner_sees_nothing_before_joining, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let visibility = json!({ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "joined" } });
    let room_id = alice.create_room(json!({ "preset": "public_chat", "initial_state": [visibility] })).await;
    for i in 1..=5 {
        alice.send_text(&room_id, &format!("before bob {i}")).await;
    }
    join_via(&bob, &room_id, &hs1.server_name).await;
    let from = prev_batch(&bob, &room_id).await;

    let events = page_back(&bob, &room_id, &from).await;
    assert_eq!(events, Vec::<Value>::new(), "nothing before the join");
    assert_eq!(backfills_served(hs1).await, 0, "history Bob may not read is not fetched");
});

scenario!(fed_12_a_forged_event_in_a_backfill_is_not_shown, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let bob = hs.client().register("bob", "password1234").await;
    let mut room = HostedRoom::create(&peer, "shared");
    room.message(&peer, "genuine", false);
    let forged = room.message(&peer, "forged", true);
    room.serve(&peer, bob.me());
    join_via(&bob, &room.room_id, &peer.server_name).await;
    let from = prev_batch(&bob, &room.room_id).await;

    let events = page_back(&bob, &room.room_id, &from).await;
    assert_eq!(messages_oldest_first(&events), ["genuine"]);
    assert!(events.iter().all(|e| e["event_id"] != forged.as_str()), "{events:?}");
    assert_eq!(events.last().map(|e| &e["type"]), Some(&json!("m.room.create")));
    let asked = |peer: &FakePeer| peer.requests().iter().filter(|r| r.uri.contains("/backfill/")).count();
    let before = asked(&peer);
    assert!(before > 0);
    page_back(&bob, &room.room_id, &from).await;
    assert_eq!(asked(&peer), before, "the peer had nothing more: not asked again");
});

scenario!(context_around_backfilled_events_shows_their_neighbours_and_the_state_at_them, |backend| {
    let servers = Cluster::start(backend, 2).await;
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let alice = hs1.client().register("alice", "password1234").await;
    let bob = hs2.client().register("bob", "password1234").await;
    let visibility = json!({ "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "shared" } });
    let room_id = alice
        .create_room(json!({ "preset": "public_chat", "name": "First name", "initial_state": [visibility] }))
        .await;
    for i in 1..=6 {
        alice.send_text(&room_id, &format!("message {i}")).await;
    }
    let name = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room_id));
    alice.put(&name, json!({ "name": "Second name" })).await.expect_status(200);
    for i in 7..=9 {
        alice.send_text(&room_id, &format!("message {i}")).await;
    }
    join_via(&bob, &room_id, &hs1.server_name).await;
    let from = prev_batch(&bob, &room_id).await;
    let history = page_back(&bob, &room_id, &from).await;
    let id = |body: &str| {
        let event = history.iter().find(|e| e["content"]["body"] == body);
        event.and_then(|e| e["event_id"].as_str()).unwrap_or_else(|| panic!("{body} backfilled")).to_owned()
    };
    let context = |event_id: String, limit: u32| {
        let bob = bob.clone();
        let path = format!("{V3}/rooms/{}/context/{}?limit={limit}", enc(&room_id), enc(&event_id));
        async move { bob.get(&path).await.expect_status(200).clone() }
    };
    let bodies = |events: &Value| -> Vec<String> {
        let events = events.as_array().cloned().unwrap_or_default();
        events.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect()
    };
    let state_of = |context: &Value, kind: &str, key: &str| -> Value {
        let state = context["state"].as_array().cloned().unwrap_or_default();
        state
            .into_iter()
            .find(|e| e["type"] == kind && e["state_key"] == key)
            .map_or(Value::Null, |e| e["content"].clone())
    };

    // Deep in the backfilled history: its neighbours, and the state at the last one returned.
    let around = context(id("message 3"), 4).await;
    assert_eq!(around["event"]["content"]["body"], "message 3");
    assert_eq!(bodies(&around["events_before"]), ["message 2", "message 1"], "{around}");
    assert_eq!(bodies(&around["events_after"]), ["message 4", "message 5"], "{around}");
    assert_eq!(state_of(&around, "m.room.name", "")["name"], "First name", "{around}");
    assert_eq!(state_of(&around, "m.room.member", alice.me())["membership"], "join", "{around}");
    assert_eq!(state_of(&around, "m.room.member", bob.me()), Value::Null, "Bob joined later: {around}");
    assert!(around["state"].as_array().is_some_and(|s| s.iter().any(|e| e["type"] == "m.room.create")));

    // After the rename, still backfilled.
    let around = context(id("message 8"), 2).await;
    assert_eq!(bodies(&around["events_after"]), ["message 9"], "{around}");
    assert_eq!(state_of(&around, "m.room.name", "")["name"], "Second name", "{around}");
    // Around the join: the state after it.
    let around = context(id("message 9"), 4).await;
    assert_eq!(state_of(&around, "m.room.member", bob.me())["membership"], "join", "{around}");
    assert_eq!(state_of(&around, "m.room.name", "")["name"], "Second name", "{around}");
});

/// Whether `server`'s `/joined_members` of `room_id`, asked by `client`, lists `user` as joined.
async fn joined_there(client: &Client, room_id: &str, user: &str) -> bool {
    let path = format!("{V3}/rooms/{}/joined_members", enc(room_id));
    client.get(&path).await.expect_status(200)["joined"].get(user).is_some()
}

scenario!(
    fed_12_history_sent_while_a_server_was_away_is_backfilled_between_the_leave_and_the_rejoin,
    |backend| {
        let servers = Cluster::start(backend, 2).await;
        let (hs1, hs2) = (&servers[0], &servers[1]);
        let alice = hs1.client().register("alice", "password1234").await;
        let bob = hs2.client().register("bob", "password1234").await;
        // `shared` (the default): Alice, joined again, may read what was said while she was away.
        let room_id = bob.create_room(json!({ "preset": "public_chat" })).await;
        join_via(&alice, &room_id, &hs2.server_name).await;
        for i in 1..=3 {
            bob.send_text(&room_id, &format!("before {i}")).await;
        }
        alice.timeline_until(&room_id, |events| bodies(events).contains(&"before 3".to_owned())).await;
        alice.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
        eventually("hs2 to see Alice leave", DEADLINE, || async {
            (!joined_there(&bob, &room_id, alice.me()).await).then_some(())
        })
        .await;
        // While no user of hs1 is in the room, hs2 sends it nothing.
        let away: Vec<String> = (1..=5).map(|i| format!("away {i}")).collect();
        for body in &away {
            bob.send_text(&room_id, body).await;
        }
        join_via(&alice, &room_id, &hs2.server_name).await;
        bob.send_text(&room_id, "after").await;
        let (_, since) = alice
            .sync_until(None, "Bob's message after the rejoin", |sync| {
                bodies(timeline(sync, &room_id)).contains(&"after".to_owned()).then_some(())
            })
            .await;

        let events = page_back(&alice, &room_id, &since).await;
        let mut expected: Vec<String> = (1..=3).map(|i| format!("before {i}")).collect();
        expected.extend(away.iter().cloned());
        expected.push("after".to_owned());
        assert_eq!(messages_oldest_first(&events), expected, "every message, in order, once");
        let memberships: Vec<&str> = events
            .iter()
            .rev()
            .filter(|e| e["type"] == "m.room.member" && e["state_key"] == alice.me())
            .filter_map(|e| e["content"]["membership"].as_str())
            .collect();
        assert_eq!(
            memberships,
            ["join", "leave", "join"],
            "the away messages sit between the leave and the rejoin"
        );
        let served = backfills_served(hs2).await;
        assert!(served > 0, "hs1 asked hs2 for the gap");

        // Paging again asks no one; nothing backfilled comes to /sync or /notifications as new.
        assert_eq!(page_back(&alice, &room_id, &since).await, events);
        assert_eq!(backfills_served(hs2).await, served, "no second /backfill");
        let incremental = alice.sync(Some(&since), None, 0).await;
        assert_eq!(timeline(&incremental, &room_id), &[] as &[Value], "{incremental}");
        let notifications = alice.get(&format!("{V3}/notifications")).await.expect_status(200).clone();
        let notified: Vec<Value> = notifications["notifications"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n["event"].clone())
            .collect();
        assert!(bodies(&notified).iter().all(|body| !body.starts_with("away")), "{notifications}");
    }
);
