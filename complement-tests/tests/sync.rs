//! `/sync` (SCENARIOS.md › SYNC-1..7, SYNC-9): initial and incremental syncs, long-polling,
//! filters and limited timelines, joins and leaves, lazy-loaded members, account data and
//! ignored users.

use std::{collections::HashSet, time::Duration};

use hearth_complement_tests::{
    TestServer,
    client::enc,
    rooms::{bodies, next_batch, timeline},
    scenario,
};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

scenario!(sync_1_a_long_poll_wakes_on_a_new_event_and_returns_only_new_events, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "name": "sync one" })).await;
    alice.send_text(&room_id, "before").await;

    let initial = alice.sync(None, None, 0).await;
    assert!(bodies(timeline(&initial, &room_id)).contains(&"before".to_owned()), "{initial}");
    let since = next_batch(&initial);

    // Nothing new: a short long-poll times out with an empty response and a usable token.
    let idle = alice.sync(Some(&since), None, 100).await;
    assert!(idle["rooms"]["join"].as_object().is_none_or(|j| j.is_empty()), "{idle}");

    let poller = alice.clone();
    let since_for_poll = next_batch(&idle);
    let poll = tokio::spawn(async move { poller.sync(Some(&since_for_poll), None, 30_000).await });
    let sent = alice.send_text(&room_id, "after").await;
    let woken = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the long-poll returned")
        .expect("join");

    let events = timeline(&woken, &room_id);
    assert_eq!(events.len(), 1, "only the new event: {woken}");
    assert_eq!(events[0]["event_id"], sent.as_str());
    assert!(events[0].get("room_id").is_none(), "sync events carry no room_id");
    assert_eq!(woken["rooms"]["join"][&room_id]["timeline"]["limited"], false);
});

scenario!(sync_2_filters_limit_the_timeline_and_bad_filters_are_rejected, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let filter = json!({ "room": { "timeline": { "limit": 2 } } });
    let created = alice.post(&format!("{V3}/user/{}/filter", enc(&me)), filter.clone()).await;
    let filter_id = created.expect_status(200)["filter_id"].as_str().expect("filter_id").to_owned();
    let stored = alice.get(&format!("{V3}/user/{}/filter/{}", enc(&me), enc(&filter_id))).await;
    assert_eq!(stored.expect_status(200)["room"]["timeline"]["limit"], 2);

    let room_id = alice.create_room(json!({})).await;
    for body in ["one", "two", "three", "four"] {
        alice.send_text(&room_id, body).await;
    }
    let by_id = alice.get(&format!("{V3}/sync?filter={}", enc(&filter_id))).await;
    let sync = by_id.expect_status(200);
    assert_eq!(bodies(timeline(sync, &room_id)), ["three", "four"]);
    let room = &sync["rooms"]["join"][&room_id];
    assert_eq!(room["timeline"]["limited"], true);

    // prev_batch pages back to the events the timeline left out.
    let prev_batch = room["timeline"]["prev_batch"].as_str().expect("prev_batch");
    let path = format!("{V3}/rooms/{}/messages?dir=b&limit=2&from={}", enc(&room_id), enc(prev_batch));
    let page = alice.get(&path).await;
    assert_eq!(bodies(page.expect_status(200)["chunk"].as_array().expect("chunk")), ["two", "one"]);

    // Inline filters work the same.
    let inline = alice.sync(None, Some(&filter), 0).await;
    assert_eq!(bodies(timeline(&inline, &room_id)), ["three", "four"]);

    // Wrong types are 400s, stored or inline.
    let filter_path = format!("{V3}/user/{}/filter", enc(&me));
    for bad in [
        json!({ "room": "everything" }),
        json!({ "room": { "timeline": { "limit": "ten" } } }),
        json!({ "presence": [] }),
    ] {
        let response = alice.post(&filter_path, bad.clone()).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
        let inline = alice.get(&format!("{V3}/sync?filter={}", enc(&bad.to_string()))).await;
        assert_eq!(inline.status, 400, "inline {bad}: {}", inline.body);
    }
    alice.get(&format!("{V3}/sync?filter=nosuchfilter")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&format!("{V3}/sync?since=garbage")).await.expect_error(400, "M_INVALID_PARAM");
});

scenario!(sync_3_a_newly_joined_room_comes_with_its_state_and_our_join, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id =
        bob.create_room(json!({ "preset": "public_chat", "name": "Bob's room", "topic": "hi" })).await;
    for i in 0..12 {
        bob.send_text(&room_id, &format!("history {i}")).await;
    }
    let since = next_batch(&alice.sync(None, None, 0).await);

    alice.join_room(&room_id).await;
    let sync = alice.sync(Some(&since), None, 10_000).await;
    let room = &sync["rooms"]["join"][&room_id];
    let events = timeline(&sync, &room_id);
    let our_join = events.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == alice.me());
    assert!(our_join, "the timeline includes our join: {room}");
    let state = room["state"]["events"].as_array().expect("state");
    let state_types: HashSet<&str> = state.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in ["m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name", "m.room.topic"] {
        assert!(state_types.contains(kind), "state has {kind}: {state_types:?}");
    }
    assert!(state.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == bob.me()));
    assert_eq!(room["summary"]["m.joined_member_count"], 2);
});

scenario!(sync_4_left_rooms_and_rejected_invites_show_once_in_leave, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = bob.create_room(json!({ "preset": "public_chat" })).await;
    alice.join_room(&room_id).await;
    let since = next_batch(&alice.sync(None, None, 0).await);

    alice.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    let sync = alice.sync(Some(&since), None, 10_000).await;
    let left = &sync["rooms"]["leave"][&room_id];
    let events = left["timeline"]["events"].as_array().expect("leave timeline");
    let leave = events.last().expect("the leave event");
    assert_eq!((&leave["type"], &leave["state_key"]), (&json!("m.room.member"), &json!(alice.me())));
    assert_eq!(leave["content"]["membership"], "leave");
    assert!(sync["rooms"]["join"].get(&room_id).is_none());

    // Rooms left before the since token do not come back.
    let since = next_batch(&sync);
    bob.send_text(&room_id, "after alice left").await;
    let later = alice.sync(Some(&since), None, 200).await;
    assert!(later["rooms"]["leave"].get(&room_id).is_none(), "{later}");
    assert!(later["rooms"]["join"].get(&room_id).is_none(), "{later}");
    let since = next_batch(&later);

    // An invite shows in invite; rejecting it shows in leave.
    let private = bob.create_room(json!({ "preset": "private_chat", "name": "secret" })).await;
    bob.invite_user(&private, alice.me()).await;
    let invited = alice.sync(Some(&since), None, 10_000).await;
    let invite_state =
        invited["rooms"]["invite"][&private]["invite_state"]["events"].as_array().expect("invite");
    assert!(invite_state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "secret"));
    assert!(invite_state.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == alice.me()));
    let since = next_batch(&invited);
    alice.post(&format!("{V3}/rooms/{}/leave", enc(&private)), json!({})).await.expect_status(200);
    let rejected = alice.sync(Some(&since), None, 10_000).await;
    let events = rejected["rooms"]["leave"][&private]["timeline"]["events"].as_array().expect("rejected");
    assert!(events.iter().any(|e| e["state_key"] == alice.me() && e["content"]["membership"] == "leave"));
    assert!(rejected["rooms"]["invite"].get(&private).is_none());
});

scenario!(sync_5_a_limited_timeline_pages_back_without_gaps_or_duplicates, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({})).await;
    let since = next_batch(&alice.sync(None, None, 0).await);
    for i in 0..30 {
        alice.send_text(&room_id, &format!("m{i}")).await;
    }
    let filter = json!({ "room": { "timeline": { "limit": 10 } } });
    let sync = alice.sync(Some(&since), Some(&filter), 10_000).await;
    let room = &sync["rooms"]["join"][&room_id];
    assert_eq!(room["timeline"]["limited"], true);
    let mut seen = bodies(timeline(&sync, &room_id));
    assert_eq!(seen, (20..30).map(|i| format!("m{i}")).collect::<Vec<_>>());

    let mut from = room["timeline"]["prev_batch"].as_str().expect("prev_batch").to_owned();
    let mut older = Vec::new();
    while older.len() < 20 {
        let path = format!("{V3}/rooms/{}/messages?dir=b&limit=7&from={}", enc(&room_id), enc(&from));
        let page = alice.get(&path).await;
        let page = page.expect_status(200);
        let chunk = page["chunk"].as_array().expect("chunk");
        assert!(!chunk.is_empty(), "ran out after {older:?}");
        older.extend(bodies(chunk));
        from = page["end"].as_str().expect("end").to_owned();
    }
    older.truncate(20);
    older.reverse();
    older.append(&mut seen);
    assert_eq!(older, (0..30).map(|i| format!("m{i}")).collect::<Vec<_>>());
});

scenario!(sync_6_lazy_loading_sends_only_the_members_of_timeline_senders, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    carol.join_room(&room_id).await;
    for i in 0..3 {
        bob.send_text(&room_id, &format!("bob {i}")).await;
    }
    let filter = json!({ "room": { "timeline": { "limit": 3 }, "state": { "lazy_load_members": true } } });
    let sync = alice.sync(None, Some(&filter), 0).await;
    let room = &sync["rooms"]["join"][&room_id];
    let members: HashSet<&str> = room["state"]["events"]
        .as_array()
        .expect("state")
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| e["state_key"].as_str())
        .collect();
    assert_eq!(members, HashSet::from([alice.me(), bob.me()]), "{room}");
    assert!(room["state"]["events"].as_array().expect("state").iter().any(|e| e["type"] == "m.room.create"));
    assert_eq!(room["summary"]["m.joined_member_count"], 3);

    // Without lazy-loading every member is there.
    let full = alice.sync(None, Some(&json!({ "room": { "timeline": { "limit": 3 } } })), 0).await;
    let all = full["rooms"]["join"][&room_id]["state"]["events"].as_array().expect("state");
    assert_eq!(all.iter().filter(|e| e["type"] == "m.room.member").count(), 3);
});

scenario!(sync_7_account_data_shows_in_initial_and_incremental_syncs, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({})).await;
    let global = format!("{V3}/user/{}/account_data/m.direct", enc(&me));
    alice.put(&global, json!({ "@bob:x": ["!a:x"] })).await.expect_status(200);
    let room_path = format!("{V3}/user/{}/rooms/{}/account_data/org.example.pin", enc(&me), enc(&room_id));
    alice.put(&room_path, json!({ "pinned": 1 })).await.expect_status(200);

    let initial = alice.sync(None, None, 0).await;
    let events = initial["account_data"]["events"].as_array().expect("account_data");
    assert!(
        events.iter().any(|e| e["type"] == "m.direct" && e["content"]["@bob:x"][0] == "!a:x"),
        "{initial}"
    );
    let room_data =
        initial["rooms"]["join"][&room_id]["account_data"]["events"].as_array().expect("room data");
    assert!(room_data.iter().any(|e| e["type"] == "org.example.pin" && e["content"]["pinned"] == 1));

    let poller = alice.clone();
    let since = next_batch(&initial);
    let poll = tokio::spawn(async move { poller.sync(Some(&since), None, 30_000).await });
    alice.put(&global, json!({ "@bob:x": ["!a:x", "!b:x"] })).await.expect_status(200);
    let woken = tokio::time::timeout(Duration::from_secs(20), poll).await.expect("woken").expect("join");
    let events = woken["account_data"]["events"].as_array().expect("account_data");
    assert_eq!(events.len(), 1, "only the change: {woken}");
    assert_eq!(events[0]["content"]["@bob:x"][1], "!b:x");
});

scenario!(sync_9_ignored_users_never_reach_the_ignoring_users_sync, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = bob.create_room(json!({ "preset": "public_chat" })).await;
    alice.join_room(&room_id).await;
    carol.join_room(&room_id).await;
    let ignore = json!({ "ignored_users": { carol.me(): {} } });
    let path = format!("{V3}/user/{}/account_data/m.ignored_user_list", enc(alice.me()));
    alice.put(&path, ignore).await.expect_status(200);
    let since = next_batch(&alice.sync(None, None, 0).await);

    carol.send_text(&room_id, "from carol").await;
    bob.send_text(&room_id, "from bob").await;
    let carols_room = carol.create_room(json!({})).await;
    carol.invite_user(&carols_room, alice.me()).await;
    let sync = alice.sync(Some(&since), None, 10_000).await;
    assert_eq!(bodies(timeline(&sync, &room_id)), ["from bob"]);
    assert!(sync["rooms"]["invite"].get(&carols_room).is_none(), "carol's invite is hidden: {sync}");
    let initial = alice.sync(None, None, 0).await;
    assert!(!bodies(timeline(&initial, &room_id)).contains(&"from carol".to_owned()));
    assert!(initial["rooms"]["invite"].get(&carols_room).is_none());
});

scenario!(eph_3_the_fully_read_marker_reaches_sync_as_room_account_data, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({})).await;
    let event_id = alice.send_text(&room_id, "read me").await;
    let since = next_batch(&alice.sync(None, None, 0).await);
    let path = format!("{V3}/rooms/{}/read_markers", enc(&room_id));
    alice.post(&path, json!({ "m.fully_read": event_id })).await.expect_status(200);
    let sync = alice.sync(Some(&since), None, 10_000).await;
    let data = sync["rooms"]["join"][&room_id]["account_data"]["events"].as_array().expect("room data");
    assert!(
        data.iter().any(|e| e["type"] == "m.fully_read" && e["content"]["event_id"] == event_id.as_str()),
        "{sync}"
    );
});

scenario!(eph_4_presence_reaches_room_members_and_sync_can_set_it, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let since = next_batch(&bob.sync(None, None, 0).await);

    let path = format!("{V3}/presence/{}/status", enc(alice.me()));
    alice.put(&path, json!({ "presence": "unavailable", "status_msg": "lunch" })).await.expect_status(200);
    let sync = bob.sync(Some(&since), None, 10_000).await;
    let events = sync["presence"]["events"].as_array().expect("presence");
    let seen = events.iter().find(|e| e["sender"] == alice.me()).expect("alice's presence");
    assert_eq!(seen["type"], "m.presence");
    assert_eq!(seen["content"]["presence"], "unavailable");
    assert_eq!(seen["content"]["status_msg"], "lunch");

    alice.get(&format!("{V3}/sync?timeout=0&set_presence=offline")).await.expect_status(200);
    assert_eq!(bob.get(&path).await.expect_status(200)["presence"], "offline");
    alice.get(&format!("{V3}/sync?timeout=0")).await.expect_status(200);
    assert_eq!(
        bob.get(&path).await.expect_status(200)["presence"],
        "online",
        "syncing sets online by default"
    );
});

scenario!(incremental_syncs_see_every_concurrent_message_exactly_once, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let rooms = [alice.create_room(json!({})).await, alice.create_room(json!({})).await];
    let mut since = next_batch(&alice.sync(None, None, 0).await);

    let mut senders = Vec::new();
    for sender in 0..4 {
        let (client, room_id) = (alice.clone(), rooms[sender % 2].clone());
        senders.push(tokio::spawn(async move {
            for i in 0..25 {
                client.send_text(&room_id, &format!("{sender}-{i}")).await;
            }
        }));
    }
    let filter = json!({ "room": { "timeline": { "limit": 1000 } } });
    let mut seen = Vec::new();
    loop {
        let senders_done = senders.iter().all(|s| s.is_finished());
        let sync = alice.sync(Some(&since), Some(&filter), 1_000).await;
        let before = seen.len();
        for room_id in &rooms {
            let limited = sync["rooms"]["join"][room_id]["timeline"]["limited"].as_bool();
            assert!(!limited.unwrap_or(false), "a limit of 1000 holds every message");
            seen.extend(bodies(timeline(&sync, room_id)));
        }
        since = next_batch(&sync);
        // Once every send was answered, one more sync that brings nothing ends the test.
        if senders_done && seen.len() == before {
            break;
        }
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (100, 100), "no duplicates and nothing missing");
});

scenario!(an_initial_sync_reads_each_of_many_rooms_as_if_alone, |backend| {
    // The rooms of one sync are read together; each must still get its own visibility,
    // redactions, summary and unread counts.
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let joined_only = json!({
        "preset": "public_chat",
        "initial_state": [{ "type": "m.room.history_visibility", "state_key": "",
                            "content": { "history_visibility": "joined" } }],
    });
    let hidden = alice.create_room(joined_only).await;
    for n in 0..15 {
        alice.send_text(&hidden, &format!("before bob {n}")).await;
    }
    bob.join_room(&hidden).await;
    alice.send_text(&hidden, "after bob").await;

    let redacting = alice.create_room(json!({ "preset": "public_chat", "name": "redacting" })).await;
    bob.join_room(&redacting).await;
    let gone = alice.send_text(&redacting, "soon gone").await;
    let path = format!("{V3}/rooms/{}/redact/{}/r1", enc(&redacting), enc(&gone));
    alice.put(&path, json!({ "reason": "oops" })).await.expect_status(200);
    let read = alice.send_text(&redacting, "read").await;
    let receipt = format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&redacting), enc(&read));
    bob.post(&receipt, json!({})).await.expect_status(200);

    let quiet = bob.create_room(json!({ "name": "bob alone" })).await;
    let mut busy = Vec::new();
    for n in 0..3 {
        let room = alice.create_room(json!({ "preset": "public_chat" })).await;
        bob.join_room(&room).await;
        for m in 0..=n {
            alice.send_text(&room, &format!("busy {n}.{m}")).await;
        }
        busy.push(room);
    }

    let sync = bob.sync(None, Some(&json!({ "room": { "timeline": { "limit": 5 } } })), 0).await;
    let join = &sync["rooms"]["join"];
    assert_eq!(join.as_object().map(|j| j.len()), Some(6), "{sync}");

    let seen = bodies(timeline(&sync, &hidden));
    assert!(seen.iter().all(|b| !b.starts_with("before bob")), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("after bob"));
    let events = timeline(&sync, &hidden);
    assert!(events.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == bob.me()), "{events:?}");

    let events = timeline(&sync, &redacting);
    let stripped = events.iter().find(|e| e["event_id"] == gone.as_str()).expect("the redacted message");
    assert_eq!(stripped["content"], json!({}));
    assert_eq!(stripped["unsigned"]["redacted_because"]["content"]["reason"], "oops");
    assert_eq!(join[&redacting]["unread_notifications"]["notification_count"], 0, "read up to the end");
    let state = join[&redacting]["state"]["events"].as_array().expect("state");
    assert!(state.iter().any(|e| e["type"] == "m.room.create"), "the state before the timeline");

    assert_eq!(join[&quiet]["summary"]["m.joined_member_count"], 1);
    assert_eq!(join[&quiet]["summary"]["m.heroes"], json!([]));
    for (n, room) in busy.iter().enumerate() {
        let summary = &join[room]["summary"];
        assert_eq!(summary["m.joined_member_count"], 2, "{summary}");
        assert_eq!(summary["m.heroes"], json!([alice.me()]));
        assert_eq!(join[room]["unread_notifications"]["notification_count"], n + 1, "{}", join[room]);
        let timeline = &join[room]["timeline"];
        let expected: Vec<String> = (0..=n).map(|m| format!("busy {n}.{m}")).collect();
        assert!(bodies(timeline["events"].as_array().expect("events")).ends_with(&expected), "{timeline}");
        assert_eq!(timeline["limited"], true, "creation events are older than the last five");
    }
});
