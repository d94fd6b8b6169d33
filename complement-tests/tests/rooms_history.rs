//! MSG-1, MSG-2, ROOM-8 and BAD-6 (SCENARIOS.md): reading a room's history through `/event`,
//! `/messages`, `/context`, `/state` and `/members`, as history visibility allows.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

async fn join(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/join/{}", enc(room_id)), json!({})).await.expect_status(200);
}

async fn leave(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/rooms/{}/leave", enc(room_id)), json!({})).await.expect_status(200);
}

async fn send_txn(client: &Client, room_id: &str, txn_id: &str, content: Value) -> Response {
    client.put(&format!("{V3}/rooms/{}/send/m.room.message/{txn_id}", enc(room_id)), content).await
}

/// Sends a text message and returns its event ID.
async fn say(client: &Client, room_id: &str, body: &str) -> String {
    let txn_id = format!("say-{}", enc(body));
    let response = send_txn(client, room_id, &txn_id, json!({ "msgtype": "m.text", "body": body })).await;
    response.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

async fn put_state(client: &Client, room_id: &str, kind: &str, state_key: &str, content: Value) -> String {
    let path = format!("{V3}/rooms/{}/state/{kind}/{}", enc(room_id), enc(state_key));
    client.put(&path, content).await.expect_status(200)["event_id"].as_str().expect("event_id").to_owned()
}

async fn set_visibility(client: &Client, room_id: &str, visibility: &str) {
    put_state(client, room_id, "m.room.history_visibility", "", json!({ "history_visibility": visibility }))
        .await;
}

/// `GET /messages` with the given query string.
async fn messages(client: &Client, room_id: &str, query: &str) -> Response {
    client.get(&format!("{V3}/rooms/{}/messages?{query}", enc(room_id))).await
}

async fn get_event(client: &Client, room_id: &str, event_id: &str) -> Response {
    client.get(&format!("{V3}/rooms/{}/event/{}", enc(room_id), enc(event_id))).await
}

fn chunk(page: &Value) -> &Vec<Value> {
    page["chunk"].as_array().expect("chunk")
}

fn bodies(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["content"]["body"].as_str()).collect()
}

fn ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event_id"].as_str().expect("event_id")).collect()
}

/// Every event `client` can page through with `dir`, following `end` until it is left out.
async fn page_all(client: &Client, room_id: &str, dir: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..100 {
        let from_param = from.as_deref().map(|f| format!("&from={}", enc(f))).unwrap_or_default();
        let response = messages(client, room_id, &format!("dir={dir}&limit={limit}{from_param}")).await;
        let page = response.expect_status(200);
        assert!(chunk(page).len() <= limit, "limit {limit} not honoured: {page}");
        assert!(page["start"].is_string(), "start is required: {page}");
        if let Some(from) = &from {
            assert_eq!(page["start"], *from.as_str(), "start is the token paged from");
        }
        events.extend(chunk(page).iter().cloned());
        match page["end"].as_str() {
            Some(end) => from = Some(end.to_owned()),
            None => return events,
        }
    }
    panic!("paging {dir} never ended");
}

scenario!(msg_1_transaction_ids_are_idempotent_per_device_and_echoed_to_it_alone, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;

    let content = json!({ "msgtype": "m.text", "body": "once" });
    let first = send_txn(&alice, &room_id, "txn1", content.clone()).await;
    let again = send_txn(&alice, &room_id, "txn1", content.clone()).await;
    let first_id = first.expect_status(200)["event_id"].clone();
    assert_eq!(again.expect_status(200)["event_id"], first_id, "a repeated transaction is the same event");

    let laptop = hs.client().login("alice", "passw0rd!").await;
    let other = send_txn(&laptop, &room_id, "txn1", content).await;
    let other_id = other.expect_status(200)["event_id"].clone();
    assert_ne!(other_id, first_id, "the same transaction ID from another device is a new event");

    let page = messages(&alice, &room_id, "dir=b&limit=50").await;
    let events = chunk(page.expect_status(200)).clone();
    assert_eq!(bodies(&events), vec!["once", "once"], "one event per device");
    let txn_of = |events: &[Value], id: &Value| {
        events.iter().find(|e| e["event_id"] == *id).expect("event in chunk")["unsigned"]["transaction_id"]
            .clone()
    };
    assert_eq!(txn_of(&events, &first_id), "txn1", "the sending device sees its transaction ID");
    assert_eq!(txn_of(&events, &other_id), Value::Null, "not on another device's event");

    let first_id = first_id.as_str().expect("event ID");
    let own = get_event(&alice, &room_id, first_id).await;
    assert_eq!(own.expect_status(200)["unsigned"]["transaction_id"], "txn1");
    let from_laptop = get_event(&laptop, &room_id, first_id).await;
    assert_eq!(from_laptop.expect_status(200)["unsigned"]["transaction_id"], Value::Null);
    let from_bob = get_event(&bob, &room_id, first_id).await;
    assert_eq!(from_bob.expect_status(200)["unsigned"]["transaction_id"], Value::Null);
    let bob_page = messages(&bob, &room_id, "dir=b&limit=50").await;
    let bob_events = chunk(bob_page.expect_status(200));
    assert!(bob_events.iter().all(|e| e["unsigned"]["transaction_id"].is_null()), "{bob_events:?}");
});

scenario!(msg_2_messages_pages_back_to_the_create_event_and_forward_again, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;
    let sent: Vec<String> = (0..12).map(|i| format!("message {i}")).collect();
    for body in &sent {
        say(&alice, &room_id, body).await;
    }

    let backwards = page_all(&alice, &room_id, "b", 5).await;
    assert_eq!(
        backwards.last().expect("events")["type"],
        "m.room.create",
        "paging back ends at the create event"
    );
    let mut expected: Vec<&str> = sent.iter().map(String::as_str).collect();
    expected.reverse();
    assert_eq!(bodies(&backwards), expected, "newest first, no gaps or repeats");
    let mut unique = ids(&backwards);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), backwards.len(), "no event twice");

    let forwards = page_all(&alice, &room_id, "f", 4).await;
    assert_eq!(forwards[0]["type"], "m.room.create", "paging forward starts at the create event");
    let mut reversed = ids(&backwards);
    reversed.reverse();
    assert_eq!(ids(&forwards), reversed, "forward order is the reverse of backward order");

    // `to` stops a page early.
    let first = messages(&alice, &room_id, "dir=b&limit=3").await;
    let first = first.expect_status(200);
    assert_eq!(bodies(chunk(first)), vec!["message 11", "message 10", "message 9"]);
    let end = first["end"].as_str().expect("more to come");
    assert!(end.starts_with('s'), "stream token: {end}");
    let until = messages(&alice, &room_id, &format!("dir=f&to={}&limit=50", enc(end))).await;
    let until = chunk(until.expect_status(200)).clone();
    assert_eq!(until[0]["type"], "m.room.create");
    assert_eq!(bodies(&until).last().copied(), Some("message 8"), "forward paging stops at `to`");
});

scenario!(msg_2_non_members_and_unknown_rooms_are_refused, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let eve = hs.client().register("eve", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat" })).await;
    say(&alice, &room_id, "private").await;

    messages(&eve, &room_id, "dir=b").await.expect_error(403, "M_FORBIDDEN");
    let unknown = format!("!nosuchroom:{}", hs.server_name);
    let response = messages(&alice, &unknown, "dir=b").await;
    assert!(matches!(response.status, 403 | 404), "unknown room: {}", response.body);
    eve.get(&format!("{V3}/rooms/{}/state", enc(&room_id))).await.expect_error(403, "M_FORBIDDEN");
    eve.get(&format!("{V3}/rooms/{}/members", enc(&room_id))).await.expect_error(403, "M_FORBIDDEN");
    let create = chunk(messages(&alice, &room_id, "dir=f&limit=1").await.expect_status(200))[0].clone();
    let context =
        format!("{V3}/rooms/{}/context/{}", enc(&room_id), enc(create["event_id"].as_str().expect("id")));
    eve.get(&context).await.expect_error(403, "M_FORBIDDEN");
    messages(&alice, &room_id, "dir=b&from=nonsense").await.expect_error(400, "M_INVALID_PARAM");
});

scenario!(msg_2_messages_filters_events_and_lazy_loads_senders, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room_id).await;
    join(&carol, &room_id).await;
    say(&carol, &room_id, "carol speaks early").await;
    say(&alice, &room_id, "alice speaks").await;
    say(&bob, &room_id, "bob speaks").await;
    let image = json!({ "msgtype": "m.image", "body": "cat.png", "url": "mxc://example.org/cat" });
    send_txn(&alice, &room_id, "img", image).await.expect_status(200);
    let custom = format!("{V3}/rooms/{}/send/org.example.custom/c1", enc(&room_id));
    alice.put(&custom, json!({ "body": "custom" })).await.expect_status(200);

    let filtered = |filter: Value| {
        let alice = alice.clone();
        let room_id = room_id.clone();
        async move {
            let query = format!("dir=b&limit=50&filter={}", enc(&filter.to_string()));
            messages(&alice, &room_id, &query).await.expect_status(200).clone()
        }
    };
    let page = filtered(json!({ "types": ["m.room.message"] })).await;
    assert!(chunk(&page).iter().all(|e| e["type"] == "m.room.message"), "{page}");
    assert_eq!(chunk(&page).len(), 4);
    let page = filtered(json!({ "not_types": ["m.room.*"] })).await;
    assert_eq!(bodies(chunk(&page)), vec!["custom"], "wildcards in not_types");
    let page = filtered(json!({ "types": ["m.room.message"], "not_senders": [bob.me(), carol.me()] })).await;
    assert_eq!(bodies(chunk(&page)), vec!["cat.png", "alice speaks"]);
    let page = filtered(json!({ "types": ["m.room.message"], "senders": [bob.me()] })).await;
    assert_eq!(bodies(chunk(&page)), vec!["bob speaks"]);
    let page = filtered(json!({ "contains_url": true })).await;
    assert_eq!(bodies(chunk(&page)), vec!["cat.png"]);
    let page = filtered(json!({ "types": ["m.room.message"], "contains_url": false })).await;
    assert_eq!(bodies(chunk(&page)), vec!["bob speaks", "alice speaks", "carol speaks early"]);

    // Lazy-loading: the state holds the member events of the chunk's senders only.
    let query = format!(
        "dir=b&limit=3&filter={}",
        enc(&json!({ "types": ["m.room.message"], "lazy_load_members": true }).to_string())
    );
    let page = messages(&alice, &room_id, &query).await;
    let page = page.expect_status(200);
    assert_eq!(bodies(chunk(page)), vec!["cat.png", "bob speaks", "alice speaks"]);
    let mut members: Vec<&str> = page["state"]
        .as_array()
        .expect("state")
        .iter()
        .inspect(|e| assert_eq!(e["type"], "m.room.member"))
        .map(|e| e["state_key"].as_str().expect("state_key"))
        .collect();
    members.sort_unstable();
    assert_eq!(members, vec![alice.me(), bob.me()], "carol sent nothing in this chunk");
    let plain = messages(&alice, &room_id, "dir=b&limit=3").await;
    assert!(
        plain.expect_status(200)["state"].as_array().is_none_or(Vec::is_empty),
        "no state without lazy-loading"
    );
});

scenario!(msg_2_context_returns_the_events_around_an_event, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "private_chat", "name": "Context" })).await;
    let mut sent = Vec::new();
    for i in 0..6 {
        sent.push(say(&alice, &room_id, &format!("m{i}")).await);
    }
    let context_path = |event_id: &str, query: &str| {
        format!("{V3}/rooms/{}/context/{}?{query}", enc(&room_id), enc(event_id))
    };

    let response = alice.get(&context_path(&sent[2], "limit=4")).await;
    let context = response.expect_status(200);
    assert_eq!(context["event"]["event_id"], sent[2].as_str());
    assert_eq!(bodies(context["events_before"].as_array().expect("before")), vec!["m1", "m0"]);
    assert_eq!(bodies(context["events_after"].as_array().expect("after")), vec!["m3", "m4"]);
    let state = context["state"].as_array().expect("state");
    assert!(state.iter().any(|e| e["type"] == "m.room.create"), "state at the event: {state:?}");
    assert!(state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Context"));

    // The tokens continue where the context stopped.
    let start = context["start"].as_str().expect("start");
    let end = context["end"].as_str().expect("end");
    let older = messages(&alice, &room_id, &format!("dir=b&limit=1&from={}", enc(start))).await;
    let older = chunk(older.expect_status(200)).clone();
    assert_eq!(older.len(), 1);
    assert!(bodies(&older).is_empty(), "only state events precede m0: {older:?}");
    let newer = messages(&alice, &room_id, &format!("dir=f&limit=10&from={}", enc(end))).await;
    assert_eq!(bodies(chunk(newer.expect_status(200))), vec!["m5"]);

    let lonely = alice.get(&context_path(&sent[5], "limit=0")).await;
    let lonely = lonely.expect_status(200);
    assert_eq!(lonely["event"]["content"]["body"], "m5");
    assert!(lonely["events_before"].as_array().is_none_or(Vec::is_empty));
    assert!(lonely["events_after"].as_array().is_none_or(Vec::is_empty));

    let lazy =
        enc(&json!({ "lazy_load_members": true, "types": ["m.room.message", "m.room.member"] }).to_string());
    let response = alice.get(&context_path(&sent[2], &format!("limit=2&filter={lazy}"))).await;
    let state = response.expect_status(200)["state"].as_array().expect("state").clone();
    assert!(!state.is_empty() && state.iter().all(|e| e["type"] == "m.room.member"), "{state:?}");

    let missing = alice.get(&context_path(&format!("$nosuchevent:{}", hs.server_name), "")).await;
    missing.expect_error(404, "M_NOT_FOUND");
});

scenario!(room_8_history_after_leaving_stops_at_the_leave_and_forget_closes_it, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat", "name": "Old name" })).await;
    join(&bob, &room_id).await;
    let before = say(&alice, &room_id, "before").await;
    leave(&bob, &room_id).await;
    let after = say(&alice, &room_id, "after").await;
    put_state(&alice, &room_id, "m.room.name", "", json!({ "name": "New name" })).await;
    put_state(&alice, &room_id, "m.room.topic", "", json!({ "topic": "Later" })).await;

    let events = page_all(&bob, &room_id, "b", 10).await;
    assert_eq!(bodies(&events), vec!["before"], "nothing after the leave");
    assert_eq!(events[0]["type"], "m.room.member", "the newest is bob's own leave");
    assert_eq!(events[0]["content"]["membership"], "leave");
    get_event(&bob, &room_id, &before).await.expect_status(200);
    get_event(&bob, &room_id, &after).await.expect_error(404, "M_NOT_FOUND");
    let context = bob.get(&format!("{V3}/rooms/{}/context/{}", enc(&room_id), enc(&before))).await;
    let context = context.expect_status(200);
    let after_it = context["events_after"].as_array().expect("after");
    assert!(bodies(after_it).is_empty(), "context stops at the leave: {after_it:?}");

    let name = bob.get(&format!("{V3}/rooms/{}/state/m.room.name/", enc(&room_id))).await;
    assert_eq!(name.expect_status(200)["name"], "Old name", "state as it was at the leave");
    let topic = bob.get(&format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room_id))).await;
    topic.expect_error(404, "M_NOT_FOUND");
    let state = bob.get(&format!("{V3}/rooms/{}/state", enc(&room_id))).await;
    let state = state.expect_status(200).as_array().expect("state events").clone();
    let names: Vec<&Value> = state.iter().filter(|e| e["type"] == "m.room.name").collect();
    assert_eq!(names[0]["content"]["name"], "Old name");
    let members = bob.get(&format!("{V3}/rooms/{}/members", enc(&room_id))).await;
    let members = members.expect_status(200)["chunk"].as_array().expect("chunk").clone();
    let bob_member = members.iter().find(|m| m["state_key"] == bob.me()).expect("bob's member event");
    assert_eq!(bob_member["content"]["membership"], "leave");
    // Alice still sees everything.
    let alice_name = alice.get(&format!("{V3}/rooms/{}/state/m.room.name/", enc(&room_id))).await;
    assert_eq!(alice_name.expect_status(200)["name"], "New name");

    bob.post(&format!("{V3}/rooms/{}/forget", enc(&room_id)), json!({})).await.expect_status(200);
    messages(&bob, &room_id, "dir=b").await.expect_error(403, "M_FORBIDDEN");
    get_event(&bob, &room_id, &before).await.expect_error(404, "M_NOT_FOUND");
    bob.get(&format!("{V3}/rooms/{}/state", enc(&room_id))).await.expect_error(403, "M_FORBIDDEN");

    // Rejoining opens the room again.
    join(&bob, &room_id).await;
    let events = page_all(&bob, &room_id, "b", 50).await;
    assert!(bodies(&events).contains(&"after"), "shared history is readable again after rejoining");
});

scenario!(bad_6_event_visibility_follows_history_visibility, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;

    // shared: non-members see nothing; a later joiner sees what came before.
    let shared = alice.create_room(json!({ "preset": "public_chat" })).await;
    let old = say(&alice, &shared, "old news").await;
    get_event(&bob, &shared, &old).await.expect_error(404, "M_NOT_FOUND");
    join(&bob, &shared).await;
    get_event(&bob, &shared, &old).await.expect_status(200);

    // joined: a later joiner cannot read what was sent before their join.
    let joined = alice.create_room(json!({ "preset": "public_chat" })).await;
    set_visibility(&alice, &joined, "joined").await;
    let secret = say(&alice, &joined, "before you came").await;
    get_event(&bob, &joined, &secret).await.expect_error(404, "M_NOT_FOUND");
    join(&bob, &joined).await;
    get_event(&bob, &joined, &secret).await.expect_error(404, "M_NOT_FOUND");
    let welcome = say(&alice, &joined, "welcome").await;
    get_event(&bob, &joined, &welcome).await.expect_status(200);
    let seen = page_all(&bob, &joined, "b", 50).await;
    assert_eq!(bodies(&seen), vec!["welcome"], "only what came after the join");

    // world_readable: anyone may read, member or not.
    let open = alice.create_room(json!({ "preset": "public_chat" })).await;
    set_visibility(&alice, &open, "world_readable").await;
    let public = say(&alice, &open, "for everyone").await;
    let event = get_event(&carol, &open, &public).await;
    assert_eq!(event.expect_status(200)["content"]["body"], "for everyone");
    let page = page_all(&carol, &open, "b", 50).await;
    assert_eq!(bodies(&page), vec!["for everyone"]);
    carol.get(&format!("{V3}/rooms/{}/state", enc(&open))).await.expect_status(200);

    // invited: readable from the invite on.
    let invited = alice.create_room(json!({ "preset": "private_chat" })).await;
    set_visibility(&alice, &invited, "invited").await;
    let earlier = say(&alice, &invited, "before the invite").await;
    let invite = json!({ "user_id": carol.me() });
    alice.post(&format!("{V3}/rooms/{}/invite", enc(&invited)), invite).await.expect_status(200);
    let meanwhile = say(&alice, &invited, "while invited").await;
    join(&carol, &invited).await;
    get_event(&carol, &invited, &earlier).await.expect_error(404, "M_NOT_FOUND");
    get_event(&carol, &invited, &meanwhile).await.expect_status(200);

    // Unknown rooms and events are 404 too.
    get_event(&alice, &format!("!nosuchroom:{}", hs.server_name), &old)
        .await
        .expect_error(404, "M_NOT_FOUND");
    get_event(&alice, &joined, &old).await.expect_error(404, "M_NOT_FOUND");
});
