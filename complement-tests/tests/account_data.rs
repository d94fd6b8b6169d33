//! Account data, room tags and the fully read marker (SCENARIOS.md › SYNC-7 storage half,
//! EPH-3 storage half): what clients store on their server at start-up, read back through the
//! account data API. (Their delivery through `/sync` is tested with sync.)

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use reqwest::Method;
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// The global account data path of `owner`.
fn global(owner: &str, kind: &str) -> String {
    format!("{V3}/user/{}/account_data/{}", enc(owner), enc(kind))
}

/// The room account data path of `owner` in `room_id`.
fn in_room(owner: &str, room_id: &str, kind: &str) -> String {
    format!("{V3}/user/{}/rooms/{}/account_data/{}", enc(owner), enc(room_id), enc(kind))
}

/// The tags path of `owner` in `room_id`, or of one tag.
fn tags(owner: &str, room_id: &str, tag: Option<&str>) -> String {
    let base = format!("{V3}/user/{}/rooms/{}/tags", enc(owner), enc(room_id));
    match tag {
        Some(tag) => format!("{base}/{}", enc(tag)),
        None => base,
    }
}

async fn send_text(client: &Client, room_id: &str, txn_id: &str, body: &str) -> String {
    let path = format!("{V3}/rooms/{}/send/m.room.message/{txn_id}", enc(room_id));
    let response = client.put(&path, json!({ "msgtype": "m.text", "body": body })).await;
    response.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

async fn read_markers(client: &Client, room_id: &str, body: Value) -> Response {
    client.post(&format!("{V3}/rooms/{}/read_markers", enc(room_id)), body).await
}

scenario!(sync_7_account_data_round_trips_arbitrary_json_globally_and_per_room, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({})).await;

    // matrix-rust-sdk asks for the default secret storage key and expects 404 when unset.
    alice.get(&global(&me, "m.secret_storage.default_key")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&in_room(&me, &room_id, "org.example.pinned")).await.expect_error(404, "M_NOT_FOUND");

    let direct = json!({
        "@bob:example.org": ["!a:example.org", "!b:example.org"],
        "nested": { "n": -12, "f": 0.5, "big": 9_007_199_254_740_991_i64, "null": null, "t": true },
        "unicode": "žluťoučký kůň 🐎",
        "empty": {},
    });
    alice.put(&global(&me, "m.direct"), direct.clone()).await.expect_status(200);
    assert_eq!(*alice.get(&global(&me, "m.direct")).await.expect_status(200), direct);

    let replaced = json!({ "@carol:example.org": ["!c:example.org"] });
    alice.put(&global(&me, "m.direct"), replaced.clone()).await.expect_status(200);
    assert_eq!(*alice.get(&global(&me, "m.direct")).await.expect_status(200), replaced, "a PUT replaces");

    let pinned = json!({ "events": ["$x", "$y"], "level": 3 });
    alice.put(&in_room(&me, &room_id, "org.example.pinned"), pinned.clone()).await.expect_status(200);
    assert_eq!(*alice.get(&in_room(&me, &room_id, "org.example.pinned")).await.expect_status(200), pinned);
    // No inheritance either way between global and room account data.
    alice.get(&global(&me, "org.example.pinned")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&in_room(&me, &room_id, "m.direct")).await.expect_error(404, "M_NOT_FOUND");
    // Room account data does not depend on the room existing on this server.
    let elsewhere = in_room(&me, "!elsewhere:example.org", "org.example.pinned");
    alice.put(&elsewhere, json!({ "a": 1 })).await.expect_status(200);
    assert_eq!(*alice.get(&elsewhere).await.expect_status(200), json!({ "a": 1 }));

    // Content must be a JSON object.
    alice.put(&global(&me, "org.example.list"), json!([1, 2])).await.expect_error(400, "M_BAD_JSON");
    alice.put(&global(&me, "org.example.text"), json!("text")).await.expect_error(400, "M_BAD_JSON");
    let not_json = alice
        .raw(
            Method::PUT,
            &global(&me, "org.example.raw"),
            Some(b"{not json".to_vec()),
            Some("application/json"),
        )
        .await;
    not_json.expect_error(400, "M_NOT_JSON");
    alice.get(&global(&me, "org.example.list")).await.expect_error(404, "M_NOT_FOUND");

    // Push rules are readable as account data before any change.
    let rules = alice.get(&global(&me, "m.push_rules")).await;
    assert!(rules.expect_status(200)["global"]["override"].is_array(), "server-default push rules");
});

scenario!(account_data_is_private_to_its_owner, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    alice.put(&global(&me, "m.direct"), json!({ "secret": true })).await.expect_status(200);
    alice.put(&tags(&me, &room_id, Some("m.favourite")), json!({})).await.expect_status(200);

    bob.get(&global(&me, "m.direct")).await.expect_error(403, "M_FORBIDDEN");
    bob.put(&global(&me, "m.direct"), json!({})).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&in_room(&me, &room_id, "m.tag")).await.expect_error(403, "M_FORBIDDEN");
    bob.put(&in_room(&me, &room_id, "m.tag"), json!({})).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&tags(&me, &room_id, None)).await.expect_error(403, "M_FORBIDDEN");
    bob.put(&tags(&me, &room_id, Some("u.bob")), json!({})).await.expect_error(403, "M_FORBIDDEN");
    bob.delete(&tags(&me, &room_id, Some("m.favourite")), json!({})).await.expect_error(403, "M_FORBIDDEN");

    assert_eq!(*alice.get(&global(&me, "m.direct")).await.expect_status(200), json!({ "secret": true }));
    let listed = alice.get(&tags(&me, &room_id, None)).await;
    assert_eq!(*listed.expect_status(200), json!({ "tags": { "m.favourite": {} } }), "bob changed nothing");
    bob.get(&global(bob.me(), "m.direct")).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(server_managed_account_data_types_are_refused_with_405, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({})).await;
    let event_id = send_text(&alice, &room_id, "t1", "hello").await;

    for kind in ["m.fully_read", "m.push_rules"] {
        let body = json!({ "event_id": event_id });
        alice.put(&global(&me, kind), body.clone()).await.expect_error(405, "M_BAD_JSON");
        alice.put(&in_room(&me, &room_id, kind), body).await.expect_error(405, "M_BAD_JSON");
    }
    alice.get(&in_room(&me, &room_id, "m.fully_read")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&global(&me, "m.fully_read")).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(room_tags_are_added_listed_and_removed, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({})).await;

    assert_eq!(*alice.get(&tags(&me, &room_id, None)).await.expect_status(200), json!({ "tags": {} }));

    alice.put(&tags(&me, &room_id, Some("m.favourite")), json!({ "order": 0.25 })).await.expect_status(200);
    let work = json!({ "order": 0.75, "org.example.colour": "teal" });
    alice.put(&tags(&me, &room_id, Some("u.Work stuff")), work.clone()).await.expect_status(200);
    let expected = json!({ "m.favourite": { "order": 0.25 }, "u.Work stuff": work });
    assert_eq!(*alice.get(&tags(&me, &room_id, None)).await.expect_status(200), json!({ "tags": expected }));
    // Tags are the `m.tag` room account data.
    let stored = alice.get(&in_room(&me, &room_id, "m.tag")).await;
    assert_eq!(*stored.expect_status(200), json!({ "tags": expected }));

    // Setting a tag again replaces its info.
    alice.put(&tags(&me, &room_id, Some("m.favourite")), json!({ "order": 0.1 })).await.expect_status(200);
    alice.delete(&tags(&me, &room_id, Some("u.Work stuff")), json!({})).await.expect_status(200);
    let left = alice.get(&tags(&me, &room_id, None)).await;
    assert_eq!(*left.expect_status(200), json!({ "tags": { "m.favourite": { "order": 0.1 } } }));
    alice.delete(&tags(&me, &room_id, Some("u.never-set")), json!({})).await.expect_status(200);

    // Tags are per room and limited to 255 bytes.
    let other_room = alice.create_room(json!({})).await;
    assert_eq!(*alice.get(&tags(&me, &other_room, None)).await.expect_status(200), json!({ "tags": {} }));
    let long = format!("u.{}", "x".repeat(254));
    alice.put(&tags(&me, &room_id, Some(&long)), json!({})).await.expect_error(400, "M_INVALID_PARAM");
    alice
        .put(&tags(&me, &room_id, Some("m.lowpriority")), json!({ "order": "high" }))
        .await
        .expect_error(400, "M_BAD_JSON");

    // Tags written through the account data API are read back by the tags API.
    let direct = json!({ "tags": { "u.imported": { "order": 0.5 } } });
    alice.put(&in_room(&me, &other_room, "m.tag"), direct.clone()).await.expect_status(200);
    assert_eq!(*alice.get(&tags(&me, &other_room, None)).await.expect_status(200), direct);
});

scenario!(tags_added_at_the_same_time_are_all_kept, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({})).await;

    let mut puts = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (alice, path) = (alice.clone(), tags(&me, &room_id, Some(&format!("u.tag{i}"))));
        puts.spawn(async move { alice.put(&path, json!({ "order": 0.5 })).await.status });
    }
    while let Some(status) = puts.join_next().await {
        assert_eq!(status.expect("task"), 200);
    }
    let listed = alice.get(&tags(&me, &room_id, None)).await.expect_status(200).clone();
    let names = listed["tags"].as_object().expect("tags object").len();
    assert_eq!(names, 12, "no concurrent edit lost another: {listed}");
});

scenario!(eph_3_read_markers_store_the_fully_read_marker, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let first = send_text(&alice, &room_id, "t1", "one").await;
    let second = send_text(&alice, &room_id, "t2", "two").await;
    let marker = in_room(&me, &room_id, "m.fully_read");

    read_markers(&alice, &room_id, json!({ "m.fully_read": first, "m.read": first }))
        .await
        .expect_status(200);
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": first }));

    read_markers(&alice, &room_id, json!({ "m.fully_read": second })).await.expect_status(200);
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": second }));
    // A stale client sending an older marker does not move it back.
    read_markers(&alice, &room_id, json!({ "m.fully_read": first })).await.expect_status(200);
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": second }));
    // Receipts alone are accepted and leave the marker alone.
    read_markers(&alice, &room_id, json!({ "m.read.private": first })).await.expect_status(200);
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": second }));

    // The event must exist in this room.
    let unknown = "$doesnotexist:example.org";
    read_markers(&alice, &room_id, json!({ "m.fully_read": unknown })).await.expect_error(404, "M_NOT_FOUND");
    let other_room = alice.create_room(json!({})).await;
    let elsewhere = send_text(&alice, &other_room, "t3", "elsewhere").await;
    read_markers(&alice, &room_id, json!({ "m.fully_read": elsewhere }))
        .await
        .expect_error(404, "M_NOT_FOUND");
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": second }));

    // Only joined members set markers; each member has their own.
    read_markers(&bob, &room_id, json!({ "m.fully_read": first })).await.expect_error(403, "M_FORBIDDEN");
    bob.get(&in_room(bob.me(), &room_id, "m.fully_read")).await.expect_error(404, "M_NOT_FOUND");
    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    read_markers(&bob, &room_id, json!({ "m.fully_read": first })).await.expect_status(200);
    let bobs = bob.get(&in_room(bob.me(), &room_id, "m.fully_read")).await;
    assert_eq!(*bobs.expect_status(200), json!({ "event_id": first }));
    assert_eq!(*alice.get(&marker).await.expect_status(200), json!({ "event_id": second }));
});
