//! What `/sync` keeps in memory between requests (which rooms had events since when, each user's
//! memberships and ignored users, their stored presence) must never make a sync miss or repeat
//! anything: not across a restart, which empties it, and not after the changes it caches.

use hearth_complement_tests::{
    TestServer,
    client::enc,
    rooms::{bodies, next_batch, timeline},
    scenario,
};
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

scenario!(an_incremental_sync_across_a_restart_misses_nothing_and_repeats_nothing, |backend| {
    let mut hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let since = next_batch(&bob.sync(None, None, 0).await);
    alice.send_text(&room_id, "before the restart").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    carol.join_room(&room_id).await;

    hs.restart().await;

    // The window began before this process did: the database answers it.
    let sync = bob.sync(Some(&since), None, 10_000).await;
    let events = timeline(&sync, &room_id);
    assert_eq!(bodies(events), ["before the restart"], "{sync}");
    assert!(
        events.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == carol.me()),
        "carol's join is in the window: {sync}"
    );
    // A window that begins after the restart is answered from memory.
    let since = next_batch(&sync);
    alice.send_text(&room_id, "after the restart").await;
    let sync = bob.sync(Some(&since), None, 10_000).await;
    assert_eq!(bodies(timeline(&sync, &room_id)), ["after the restart"], "{sync}");
    let since = next_batch(&sync);
    let quiet = bob.sync(Some(&since), None, 100).await;
    assert!(quiet["rooms"]["join"].as_object().is_none_or(|j| j.is_empty()), "nothing repeats: {quiet}");
});

scenario!(ignoring_and_unignoring_take_effect_on_the_following_syncs, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = carol.create_room(json!({ "preset": "public_chat" })).await;
    alice.join_room(&room_id).await;
    let path = format!("{V3}/user/{}/account_data/m.ignored_user_list", enc(alice.me()));
    let mut since = next_batch(&alice.sync(None, None, 0).await);
    let mut read = async |body: &str| {
        carol.send_text(&room_id, body).await;
        alice.send_text(&room_id, "and alice").await;
        let sync = alice.sync(Some(&since), None, 10_000).await;
        since = next_batch(&sync);
        bodies(timeline(&sync, &room_id))
    };
    // Incremental syncs read (and keep) alice's ignored users: nobody yet.
    assert_eq!(read("one").await, ["one", "and alice"]);

    alice.put(&path, json!({ "ignored_users": { carol.me(): {} } })).await.expect_status(200);
    assert_eq!(read("two").await, ["and alice"], "the sync that carries the change");
    assert_eq!(read("three").await, ["and alice"], "and every sync after it");

    alice.put(&path, json!({ "ignored_users": {} })).await.expect_status(200);
    assert_eq!(read("four").await, ["four", "and alice"]);
    assert_eq!(read("five").await, ["five", "and alice"]);
});

scenario!(lazy_loading_sends_a_member_event_once_unless_redundant_members_are_asked_for, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    let lazy = |redundant: bool| {
        json!({ "room": { "timeline": { "limit": 10 },
            "state": { "lazy_load_members": true, "include_redundant_members": redundant } } })
    };
    let members_in_state = |sync: &serde_json::Value| -> Vec<String> {
        let state =
            sync["rooms"]["join"][&room_id]["state"]["events"].as_array().cloned().unwrap_or_default();
        state.iter().filter(|e| e["type"] == "m.room.member").map(|e| e["state_key"].to_string()).collect()
    };
    let filter = lazy(false);
    let first = alice.sync(None, Some(&filter), 0).await;

    bob.send_text(&room_id, "one").await;
    let second = alice.sync(Some(&next_batch(&first)), Some(&filter), 10_000).await;
    assert_eq!(
        members_in_state(&second),
        Vec::<String>::new(),
        "bob's join came in the first timeline: {second}"
    );
    bob.send_text(&room_id, "two").await;
    let third = alice.sync(Some(&next_batch(&second)), Some(&filter), 10_000).await;
    assert_eq!(bodies(timeline(&third, &room_id)), ["two"]);
    assert!(members_in_state(&third).is_empty(), "{third}");

    // Retrying an older token (the response to it may have been lost) sends the members again.
    let retry = alice.sync(Some(&next_batch(&first)), Some(&filter), 10_000).await;
    assert_eq!(members_in_state(&retry), [format!("\"{}\"", bob.me())], "{retry}");
    // Asked for, redundant members always come.
    let redundant = alice.sync(Some(&next_batch(&second)), Some(&lazy(true)), 10_000).await;
    assert_eq!(members_in_state(&redundant), [format!("\"{}\"", bob.me())], "{redundant}");
});

scenario!(unread_counts_carried_between_syncs_follow_messages_mentions_receipts_and_a_rejoin, |backend| {
    // Counts a sync took are kept and carried forward by the messages that follow; a read
    // receipt or the user's own leave and re-join must still count afresh.
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    // Carol stays: what is sent while Bob is away notifies her, not him.
    let carol = hs.client().register("carol", "passw0rd!").await;
    carol.join_room(&room_id).await;
    let mut since = next_batch(&bob.sync(None, None, 0).await);
    let mut counts = async || {
        let sync = bob.sync(Some(&since), None, 10_000).await;
        since = next_batch(&sync);
        let unread = &sync["rooms"]["join"][&room_id]["unread_notifications"];
        (unread["notification_count"].as_u64(), unread["highlight_count"].as_u64())
    };

    alice.send_text(&room_id, "one").await;
    let two = alice.send_text(&room_id, "two").await;
    assert_eq!(counts().await, (Some(2), Some(0)));
    alice.send_text(&room_id, "three").await;
    assert_eq!(counts().await, (Some(3), Some(0)));
    let path = format!("{V3}/rooms/{}/send/m.room.message/mention", enc(&room_id));
    let mention = json!({ "msgtype": "m.text", "body": "bob!", "m.mentions": { "user_ids": [bob.me()] } });
    alice.put(&path, mention).await.expect_status(200);
    assert_eq!(counts().await, (Some(4), Some(1)));

    let receipt = |event_id: &str| format!("{V3}/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(event_id));
    bob.post(&receipt(&two), json!({})).await.expect_status(200);
    assert_eq!(counts().await, (Some(2), Some(1)), "read up to two");
    let five = alice.send_text(&room_id, "five").await;
    assert_eq!(counts().await, (Some(3), Some(1)));

    bob.post(&receipt(&five), json!({})).await.expect_status(200);
    assert_eq!(counts().await, (Some(0), Some(0)), "read up to five");
    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    alice.send_text(&room_id, "while bob was away").await;
    bob.join_room(&room_id).await;
    assert_eq!(counts().await, (Some(0), Some(0)), "nothing from before the re-join counts");
    alice.send_text(&room_id, "welcome back").await;
    assert_eq!(counts().await, (Some(1), Some(0)));
});
