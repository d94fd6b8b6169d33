//! Relations, threads, edits, reactions and references (spec: Client-Server API › Forming
//! relationships between events, Threading, Event replacements, Event annotations, Reference
//! relations), and `timestamp_to_event`.

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

/// A public room of `alice` that the other clients joined.
async fn public_room(alice: &Client, others: &[&Client]) -> String {
    let response = alice.post("/_matrix/client/v3/createRoom", json!({ "preset": "public_chat" })).await;
    let room = response.expect_status(200)["room_id"].as_str().expect("room_id").to_owned();
    for other in others {
        other.post(&format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.expect_status(200);
    }
    room
}

async fn send_as(client: &Client, room: &str, kind: &str, content: Value) -> Result<String, (u16, Value)> {
    let txn = format!("t{}", rand_txn());
    let path = format!("/_matrix/client/v3/rooms/{}/send/{kind}/{txn}", enc(room));
    let response = client.put(&path, content).await;
    match response.status {
        200 => Ok(response.body["event_id"].as_str().expect("event_id").to_owned()),
        status => Err((status, response.body)),
    }
}

async fn send(client: &Client, room: &str, content: Value) -> String {
    send_as(client, room, "m.room.message", content).await.expect("sent")
}

fn rand_txn() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn text(body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body })
}

fn in_thread(root: &str, body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body, "m.relates_to": { "rel_type": "m.thread", "event_id": root } })
}

fn edit(original: &str, body: &str) -> Value {
    json!({
        "msgtype": "m.text",
        "body": format!("* {body}"),
        "m.new_content": { "msgtype": "m.text", "body": body },
        "m.relates_to": { "rel_type": "m.replace", "event_id": original },
    })
}

async fn get_event(client: &Client, room: &str, event: &str) -> Value {
    let path = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room), enc(event));
    client.get(&path).await.expect_status(200).clone()
}

async fn relations(client: &Client, room: &str, event: &str, rest: &str) -> Value {
    let path = format!("/_matrix/client/v1/rooms/{}/relations/{}{rest}", enc(room), enc(event));
    client.get(&path).await.expect_status(200).clone()
}

fn ids(chunk: &Value) -> Vec<String> {
    chunk
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

async fn redact(client: &Client, room: &str, event: &str) {
    let path = format!("/_matrix/client/v3/rooms/{}/redact/{}/r{}", enc(room), enc(event), rand_txn());
    client.put(&path, json!({})).await.expect_status(200);
}

scenario!(thread_replies_are_bundled_on_the_root_and_paged_by_relations, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room = public_room(&alice, &[&bob, &carol]).await;
    let root = send(&alice, &room, text("root")).await;
    let first = send(&bob, &room, in_thread(&root, "one")).await;
    let second = send(&bob, &room, in_thread(&root, "two")).await;
    let last = send(&alice, &room, in_thread(&root, "three")).await;
    send(&carol, &room, text("not in the thread")).await;

    let seen_by_bob = get_event(&bob, &room, &root).await;
    let thread = &seen_by_bob["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(thread["count"], 3, "{seen_by_bob}");
    assert_eq!(thread["latest_event"]["event_id"], last.as_str());
    assert_eq!(thread["latest_event"]["content"]["body"], "three");
    assert_eq!(thread["current_user_participated"], true);
    let seen_by_carol = get_event(&carol, &room, &root).await;
    assert_eq!(seen_by_carol["unsigned"]["m.relations"]["m.thread"]["current_user_participated"], false);

    // Newest first by default, paged with next_batch.
    let page = relations(&carol, &room, &root, "?limit=2").await;
    assert_eq!(ids(&page["chunk"]), vec![last.clone(), second.clone()]);
    let next = page["next_batch"].as_str().expect("next_batch");
    let page = relations(&carol, &room, &root, &format!("?limit=2&from={next}")).await;
    assert_eq!(ids(&page["chunk"]), vec![first.clone()]);
    assert!(page.get("next_batch").is_none(), "last page: {page}");
    let forwards = relations(&carol, &room, &root, "/m.thread/m.room.message?dir=f").await;
    assert_eq!(ids(&forwards["chunk"]), vec![first.clone(), second.clone(), last.clone()]);
    let none = relations(&carol, &room, &root, "/m.annotation").await;
    assert_eq!(ids(&none["chunk"]), Vec::<String>::new());

    // The messages page carries the same bundle.
    let messages =
        carol.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=20", enc(&room))).await;
    let chunk = messages.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    let served_root = chunk.iter().find(|e| e["event_id"] == root.as_str()).expect("root in /messages");
    assert_eq!(served_root["unsigned"]["m.relations"]["m.thread"]["count"], 3);

    // Threads cannot start from an event that is itself a relation.
    let refused = send_as(&bob, &room, "m.room.message", in_thread(&first, "nested")).await;
    let (status, body) = refused.expect_err("refused");
    assert_eq!((status, body["errcode"].clone()), (400, json!("M_UNKNOWN")), "{body}");

    // A redacted reply leaves the thread.
    redact(&alice, &room, &last).await;
    let after = get_event(&carol, &room, &root).await;
    assert_eq!(after["unsigned"]["m.relations"]["m.thread"]["count"], 2, "{after}");
    assert_eq!(after["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"], second.as_str());

    // Someone who cannot read the room does not learn about the parent.
    let mallory = hs.client().register("mallory", "passw0rd!").await;
    let path = format!("/_matrix/client/v1/rooms/{}/relations/{}", enc(&room), enc(&root));
    assert_eq!(mallory.get(&path).await.status, 404);
});

scenario!(the_latest_valid_edit_is_bundled_and_the_original_content_is_kept, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room = public_room(&alice, &[&bob]).await;
    let original = send(&alice, &room, text("helo")).await;
    let first_edit = send(&alice, &room, edit(&original, "hello")).await;
    let second_edit = send(&alice, &room, edit(&original, "hello!")).await;
    // Not valid replacements: another sender, and no m.new_content.
    send(&bob, &room, edit(&original, "hijacked")).await;
    let mut no_new_content = edit(&original, "x");
    no_new_content.as_object_mut().expect("object").remove("m.new_content");
    send(&alice, &room, no_new_content).await;

    let served = get_event(&bob, &room, &original).await;
    assert_eq!(served["content"]["body"], "helo", "the server does not apply edits: {served}");
    let bundled = &served["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(bundled["event_id"], second_edit.as_str(), "{served}");
    assert_eq!(bundled["content"]["m.new_content"]["body"], "hello!");

    redact(&alice, &room, &second_edit).await;
    let served = get_event(&bob, &room, &original).await;
    assert_eq!(served["unsigned"]["m.relations"]["m.replace"]["event_id"], first_edit.as_str(), "{served}");

    redact(&alice, &room, &original).await;
    let served = get_event(&bob, &room, &original).await;
    assert_eq!(served["content"], json!({}));
    assert!(
        served["unsigned"].get("m.relations").is_none(),
        "edits of a redacted event are not bundled: {served}"
    );
});

scenario!(reactions_are_listed_not_bundled_and_sent_once_per_key, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room = public_room(&alice, &[&bob]).await;
    let message = send(&alice, &room, text("vote")).await;
    let react = |key: &str| json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": message, "key": key } });
    let thumbs = send_as(&bob, &room, "m.reaction", react("👍")).await.expect("first reaction");
    let (status, body) = send_as(&bob, &room, "m.reaction", react("👍")).await.expect_err("duplicate");
    assert_eq!((status, body["errcode"].clone()), (400, json!("M_DUPLICATE_ANNOTATION")));
    send_as(&alice, &room, "m.reaction", react("👍")).await.expect("another user may use the same key");
    send_as(&bob, &room, "m.reaction", react("🎉")).await.expect("another key");
    let reference = send(
        &bob,
        &room,
        json!({ "msgtype": "m.text", "body": "see", "m.relates_to": { "rel_type": "m.reference", "event_id": message } }),
    )
    .await;

    let listed = relations(&alice, &room, &message, "/m.annotation/m.reaction?limit=10").await;
    assert_eq!(ids(&listed["chunk"]).len(), 3, "{listed}");
    let served = get_event(&alice, &room, &message).await;
    let bundle = &served["unsigned"]["m.relations"];
    assert!(bundle.get("m.annotation").is_none(), "annotations are not bundled: {served}");
    assert_eq!(bundle["m.reference"], json!({ "chunk": [{ "event_id": reference }] }));

    // Once redacted, the reaction may be sent again.
    redact(&bob, &room, &thumbs).await;
    send_as(&bob, &room, "m.reaction", react("👍")).await.expect("allowed after the redaction");
});

scenario!(recursing_relations_follows_children_of_children, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room = public_room(&alice, &[]).await;
    let root = send(&alice, &room, text("root")).await;
    let reply = send(&alice, &room, in_thread(&root, "reply")).await;
    let reaction = json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": reply, "key": "👀" } });
    let reaction = send_as(&alice, &room, "m.reaction", reaction).await.expect("reaction");

    let direct = relations(&alice, &room, &root, "?limit=10").await;
    assert_eq!(ids(&direct["chunk"]), vec![reply.clone()]);
    assert!(direct.get("recursion_depth").is_none(), "only with recurse: {direct}");
    let deep = relations(&alice, &room, &root, "?limit=10&recurse=true").await;
    assert_eq!(ids(&deep["chunk"]), vec![reaction.clone(), reply.clone()]);
    assert_eq!(deep["recursion_depth"], 3);
    // A filter applies along the way: the reaction hangs off a thread event, not an annotation.
    let filtered = relations(&alice, &room, &root, "/m.annotation?limit=10&recurse=true").await;
    assert_eq!(ids(&filtered["chunk"]), Vec::<String>::new());
});

scenario!(threads_are_listed_by_latest_activity_and_by_participation, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room = public_room(&alice, &[&carol]).await;
    let older = send(&alice, &room, text("first thread")).await;
    let newer = send(&alice, &room, text("second thread")).await;
    send(&alice, &room, in_thread(&newer, "a")).await;
    send(&carol, &room, in_thread(&older, "b")).await;

    let path = format!("/_matrix/client/v1/rooms/{}/threads", enc(&room));
    let all = alice.get(&path).await.expect_status(200).clone();
    assert_eq!(ids(&all["chunk"]), vec![older.clone(), newer.clone()], "latest activity first: {all}");
    assert_eq!(all["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["count"], 1);
    let mine = carol.get(&format!("{path}?include=participated")).await.expect_status(200).clone();
    assert_eq!(ids(&mine["chunk"]), vec![older.clone()]);

    let first = alice.get(&format!("{path}?limit=1")).await.expect_status(200).clone();
    assert_eq!(ids(&first["chunk"]), vec![older.clone()]);
    let next = first["next_batch"].as_str().expect("next_batch");
    let second = alice.get(&format!("{path}?limit=1&from={next}")).await.expect_status(200).clone();
    assert_eq!(ids(&second["chunk"]), vec![newer.clone()]);
    assert!(second.get("next_batch").is_none(), "{second}");
});

scenario!(timestamp_to_event_finds_the_closest_event_in_either_direction, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room = public_room(&alice, &[]).await;
    let message = send(&alice, &room, text("then")).await;
    let last = send(&alice, &room, text("now")).await;
    let ts = get_event(&alice, &room, &message).await["origin_server_ts"].as_u64().expect("ts");

    let path = |ts: u64, dir: &str| {
        format!("/_matrix/client/v1/rooms/{}/timestamp_to_event?ts={ts}&dir={dir}", enc(&room))
    };
    let found = alice.get(&path(ts, "f")).await.expect_status(200).clone();
    assert_eq!(found["origin_server_ts"], ts, "{found}");
    let future = ts + 3_600_000;
    let newest = alice.get(&path(future, "b")).await.expect_status(200).clone();
    assert_eq!(newest["event_id"], last.as_str(), "{newest}");
    let state = alice.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room))).await;
    let create = state
        .expect_status(200)
        .as_array()
        .expect("state")
        .iter()
        .find(|e| e["type"] == "m.room.create")
        .expect("create")["event_id"]
        .clone();
    let oldest = alice.get(&path(0, "f")).await.expect_status(200).clone();
    assert_eq!(oldest["event_id"], create, "{oldest}");
    alice.get(&path(future, "f")).await.expect_error(404, "M_NOT_FOUND");
    alice.get(&path(1, "b")).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(sync_timelines_bundle_what_relates_to_their_events, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room = public_room(&alice, &[&bob]).await;
    let filter = json!({ "room": { "timeline": { "limit": 10 } } });
    let event_in = |sync: &Value, id: &str| -> Value {
        let events =
            sync["rooms"]["join"][&room]["timeline"]["events"].as_array().cloned().unwrap_or_default();
        events.into_iter().find(|e| e["event_id"] == id).unwrap_or_else(|| panic!("{id} in {sync}"))
    };
    let original = send(&alice, &room, text("helo")).await;
    let edited = send(&alice, &room, edit(&original, "hello")).await;
    let reply = send(&bob, &room, in_thread(&original, "a reply")).await;
    let initial = bob.sync(None, Some(&filter), 0).await;
    let bundled = &event_in(&initial, &original)["unsigned"]["m.relations"];
    assert_eq!(bundled["m.replace"]["event_id"], edited.as_str(), "{initial}");
    assert_eq!(bundled["m.thread"]["latest_event"]["event_id"], reply.as_str(), "{initial}");

    // In an incremental sync: a message nothing relates to, and one edited in the same window.
    let since = initial["next_batch"].as_str().expect("next_batch").to_owned();
    let plain = send(&alice, &room, text("plain")).await;
    let second = send(&alice, &room, text("secnod")).await;
    let fixed = send(&alice, &room, edit(&second, "second")).await;
    let sync = bob.sync(Some(&since), Some(&filter), 10_000).await;
    assert!(event_in(&sync, &plain)["unsigned"].get("m.relations").is_none(), "{sync}");
    assert_eq!(event_in(&sync, &second)["unsigned"]["m.relations"]["m.replace"]["event_id"], fixed.as_str());

    // Only the edit is new: nothing in this window relates to anything in it.
    let since = sync["next_batch"].as_str().expect("next_batch").to_owned();
    let again = send(&alice, &room, edit(&second, "second!")).await;
    let sync = bob.sync(Some(&since), Some(&filter), 10_000).await;
    assert!(event_in(&sync, &again)["unsigned"].get("m.relations").is_none(), "{sync}");
});
