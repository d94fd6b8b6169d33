//! SRCH-1 and SRCH-2 (SCENARIOS.md) and the rest of server-side search: ordering, filters,
//! redactions, history visibility, ignored users, and the user directory.

use std::collections::HashSet;

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

/// `POST /search` over `room_events` with `criteria`, from `next_batch` if given.
async fn search(client: &Client, criteria: Value, next_batch: Option<&str>) -> Response {
    let query = next_batch.map(|t| format!("?next_batch={}", enc(t))).unwrap_or_default();
    client
        .post(&format!("{V3}/search{query}"), json!({ "search_categories": { "room_events": criteria } }))
        .await
}

/// The `room_events` part of a successful search.
async fn room_events(client: &Client, criteria: Value) -> Value {
    search(client, criteria, None).await.expect_status(200)["search_categories"]["room_events"].clone()
}

fn results(room_events: &Value) -> Vec<Value> {
    room_events["results"].as_array().cloned().unwrap_or_default()
}

fn result_bodies(room_events: &Value) -> Vec<String> {
    results(room_events)
        .iter()
        .map(|r| r["result"]["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn result_ids(room_events: &Value) -> Vec<String> {
    results(room_events)
        .iter()
        .map(|r| r["result"]["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

async fn put_state(client: &Client, room_id: &str, kind: &str, content: Value) {
    let path = format!("{V3}/rooms/{}/state/{kind}/", enc(room_id));
    client.put(&path, content).await.expect_status(200);
}

async fn leave(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/rooms/{}/leave", enc(room_id)), json!({})).await.expect_status(200);
}

/// Every result of a search, following `next_batch`; checks each page honours `limit`.
async fn all_pages(client: &Client, criteria: Value, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..50 {
        let response = search(client, criteria.clone(), next.as_deref()).await;
        let page = &response.expect_status(200)["search_categories"]["room_events"];
        assert!(results(page).len() <= limit, "limit {limit} not honoured: {page}");
        ids.extend(result_ids(page));
        match page["next_batch"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return ids,
        }
    }
    panic!("paging never ended");
}

scenario!(srch_1_a_word_is_found_only_in_rooms_the_user_joined, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let bob = hs.client().register("bob", "pw-bob-1").await;
    let mine = alice.create_room(json!({ "name": "Tea party" })).await;
    let theirs = bob.create_room(json!({ "preset": "public_chat" })).await;
    let found = alice.send_text(&mine, "The Martians have landed").await;
    bob.send_text(&theirs, "martians everywhere").await;
    alice.send_text(&mine, "nothing to see").await;
    alice.send_text(&mine, "martial arts").await;
    alice.send_text(&mine, "kiwis and kiwano").await;
    alice.send_text(&mine, "kiwifruit or kiwi").await;

    let events = room_events(&alice, json!({ "search_term": "martians" })).await;
    assert_eq!(events["count"], 1, "{events}");
    assert_eq!(result_ids(&events), std::slice::from_ref(&found));
    let first = &results(&events)[0];
    assert!(first["rank"].as_f64().is_some_and(|r| r > 0.0), "a positive rank: {first}");
    assert_eq!(first["result"]["room_id"], mine.as_str());
    assert_eq!(first["result"]["type"], "m.room.message");
    assert_eq!(first["result"]["sender"], alice.me());
    assert_eq!(events["highlights"], json!(["martians"]));

    // Prefixes match, case does not matter, every word must match.
    assert_eq!(result_ids(&room_events(&alice, json!({ "search_term": "MART land" })).await), [found]);
    assert!(results(&room_events(&alice, json!({ "search_term": "martians nothing" })).await).is_empty());
    // A word that begins several words finds them all; one no message holds finds nothing.
    assert_eq!(results(&room_events(&alice, json!({ "search_term": "mart" })).await).len(), 2);
    // Beginning more words than PostgreSQL names (storage::search::WordMatch::Prefix there).
    assert_eq!(results(&room_events(&alice, json!({ "search_term": "kiw" })).await).len(), 2);
    let unknown = room_events(&alice, json!({ "search_term": "zebra" })).await;
    assert!(results(&unknown).is_empty() && unknown["count"] == 0, "{unknown}");
    // Room names are searched too.
    let named = room_events(&alice, json!({ "search_term": "tea" })).await;
    assert_eq!(results(&named)[0]["result"]["type"], "m.room.name", "{named}");
    // Bob, who never joined Alice's room, finds only his own message.
    let events = room_events(&bob, json!({ "search_term": "martians" })).await;
    assert_eq!(result_bodies(&events), ["martians everywhere"]);
});

scenario!(search_refuses_unknown_categories_keys_orders_and_tokens, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let body = json!({ "search_categories": { "files": { "search_term": "x" } } });
    alice.post(&format!("{V3}/search"), body).await.expect_error(400, "M_INVALID_PARAM");
    let criteria = json!({ "search_term": "x", "keys": ["content.nope"] });
    search(&alice, criteria, None).await.expect_error(400, "M_INVALID_PARAM");
    search(&alice, json!({ "search_term": "x", "order_by": "loudest" }), None)
        .await
        .expect_error(400, "M_INVALID_PARAM");
    search(&alice, json!({ "search_term": "x" }), Some("garbage")).await.expect_error(400, "M_INVALID_PARAM");
    alice.post(&format!("{V3}/search"), json!({})).await.expect_error(400, "M_BAD_JSON");
    // Punctuation alone searches for nothing.
    let events = room_events(&alice, json!({ "search_term": "?!" })).await;
    assert!(results(&events).is_empty());
});

scenario!(srch_2_pages_return_every_result_once_with_context, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let room = alice.create_room(json!({})).await;
    let mut sent = Vec::new();
    for i in 0..7 {
        sent.push(alice.send_text(&room, &format!("needle number {i}")).await);
        alice.send_text(&room, &format!("hay {i}")).await;
    }

    for order in ["rank", "recent"] {
        let criteria = json!({ "search_term": "needle", "order_by": order, "filter": { "limit": 3 } });
        let ids = all_pages(&alice, criteria, 3).await;
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "no duplicates ({order}): {ids:?}");
        assert_eq!(distinct, sent.iter().collect(), "every result ({order})");
        if order == "recent" {
            let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
            assert_eq!(ids, newest_first);
        }
    }

    let criteria = json!({
        "search_term": "needle number 3",
        "event_context": { "before_limit": 1, "after_limit": 2, "include_profile": true },
    });
    let events = room_events(&alice, criteria).await;
    assert_eq!(result_bodies(&events), ["needle number 3"]);
    let context = &results(&events)[0]["context"];
    let bodies = |key: &str| -> Vec<String> {
        context[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|e| e["content"]["body"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(bodies("events_before"), ["hay 2"]);
    assert_eq!(bodies("events_after"), ["hay 3", "needle number 4"]);
    assert!(context["start"].is_string() && context["end"].is_string(), "{context}");
    assert_eq!(context["profile_info"][alice.me()]["displayname"], "alice", "{context}");
    // The context tokens page on with /messages.
    let path = format!(
        "{V3}/rooms/{}/messages?dir=b&limit=1&from={}",
        enc(&room),
        enc(context["start"].as_str().unwrap_or(""))
    );
    let older = alice.get(&path).await;
    assert_eq!(older.expect_status(200)["chunk"][0]["content"]["body"], "needle number 2");

    // Without `event_context`, no context; grouping by room lists the results.
    let criteria = json!({ "search_term": "needle", "groupings": { "group_by": [{ "key": "room_id" }] } });
    let events = room_events(&alice, criteria).await;
    assert!(results(&events)[0].get("context").is_none(), "{events}");
    assert_eq!(events["groups"]["room_id"][&room]["results"].as_array().map(Vec::len), Some(7), "{events}");
});

scenario!(recent_order_puts_the_newest_first_and_filters_narrow_the_search, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let bob = hs.client().register("bob", "pw-bob-1").await;
    let first = alice.create_room(json!({ "preset": "public_chat", "topic": "apples and more" })).await;
    let second = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&first).await;
    bob.join_room(&second).await;
    alice.send_text(&first, "apples one").await;
    bob.send_text(&first, "apples two").await;
    alice.send_text(&second, "apples three").await;

    let recent =
        room_events(&bob, json!({ "search_term": "apples", "order_by": "recent", "keys": ["content.body"] }))
            .await;
    assert_eq!(result_bodies(&recent), ["apples three", "apples two", "apples one"]);
    assert_eq!(recent["count"], 3);

    let in_first = json!({ "search_term": "apples", "keys": ["content.body"], "order_by": "recent", "filter": { "rooms": [first] } });
    assert_eq!(result_bodies(&room_events(&bob, in_first).await), ["apples two", "apples one"]);
    let not_first = json!({ "search_term": "apples", "filter": { "not_rooms": [first] } });
    assert_eq!(result_bodies(&room_events(&bob, not_first).await), ["apples three"]);
    let from_bob = json!({ "search_term": "apples", "filter": { "senders": [bob.me()] } });
    assert_eq!(result_bodies(&room_events(&bob, from_bob).await), ["apples two"]);
    let not_alice = json!({ "search_term": "apples", "filter": { "not_senders": [alice.me()] } });
    assert_eq!(result_bodies(&room_events(&bob, not_alice).await), ["apples two"]);
    // The topic is found through its key or its type, not through the body key.
    let topics = room_events(&bob, json!({ "search_term": "apples", "keys": ["content.topic"] })).await;
    assert_eq!(results(&topics).len(), 1, "{topics}");
    assert_eq!(results(&topics)[0]["result"]["content"]["topic"], "apples and more");
    let by_type =
        room_events(&bob, json!({ "search_term": "apples", "filter": { "types": ["m.room.topic"] } })).await;
    assert_eq!(result_ids(&by_type), result_ids(&topics));
    let messages_only = json!({ "search_term": "apples", "filter": { "not_types": ["m.room.topic"] } });
    assert_eq!(results(&room_events(&bob, messages_only).await).len(), 3);
});

scenario!(redacted_messages_and_ignored_users_drop_out_of_search, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let bob = hs.client().register("bob", "pw-bob-1").await;
    let room = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room).await;
    let oops = alice.send_text(&room, "my password is banana").await;
    bob.send_text(&room, "banana bread").await;
    assert_eq!(results(&room_events(&alice, json!({ "search_term": "banana" })).await).len(), 2);

    let path = format!("{V3}/rooms/{}/redact/{}/r1", enc(&room), enc(&oops));
    alice.put(&path, json!({})).await.expect_status(200);
    let events = room_events(&alice, json!({ "search_term": "banana" })).await;
    assert_eq!(result_bodies(&events), ["banana bread"]);
    assert_eq!(events["count"], 1);

    let path = format!("{V3}/user/{}/account_data/m.ignored_user_list", enc(alice.me()));
    alice.put(&path, json!({ "ignored_users": { bob.me(): {} } })).await.expect_status(200);
    assert!(results(&room_events(&alice, json!({ "search_term": "banana" })).await).is_empty());
});

scenario!(a_message_with_a_very_long_word_is_sent_and_found_by_its_other_words, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let room = alice.create_room(json!({})).await;
    // PostgreSQL refuses such a lexeme and index entry: the send failed with a 500.
    let long = "x".repeat(30_000);
    alice.send_text(&room, &format!("kiwi mango {long}")).await;
    let events = room_events(&alice, json!({ "search_term": "mango" })).await;
    assert_eq!(results(&events).len(), 1, "{events}");
});

scenario!(search_sees_only_what_history_visibility_allows, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let bob = hs.client().register("bob", "pw-bob-1").await;
    let carol = hs.client().register("carol", "pw-carol-1").await;
    let room = alice.create_room(json!({ "preset": "public_chat" })).await;
    put_state(&alice, &room, "m.room.history_visibility", json!({ "history_visibility": "joined" })).await;
    alice.send_text(&room, "secret before").await;
    bob.join_room(&room).await;
    alice.send_text(&room, "secret while joined").await;
    leave(&bob, &room).await;
    alice.send_text(&room, "secret after leaving").await;

    let events = room_events(&bob, json!({ "search_term": "secret", "order_by": "recent" })).await;
    assert_eq!(result_bodies(&events), ["secret while joined"]);
    assert_eq!(events["count"], 1);
    // Context stops where Bob's view of the room stops.
    let criteria =
        json!({ "search_term": "secret", "event_context": { "before_limit": 5, "after_limit": 5 } });
    let events = room_events(&bob, criteria).await;
    let context = &results(&events)[0]["context"];
    let after = context["events_after"].as_array().cloned().unwrap_or_default();
    assert!(after.iter().all(|e| e["content"]["body"] != "secret after leaving"), "{context}");
    // Carol never joined: nothing at all.
    let events = room_events(&carol, json!({ "search_term": "secret" })).await;
    assert!(results(&events).is_empty(), "{events}");
    assert_eq!(events["count"], 0);
    // Alice sees all three.
    assert_eq!(results(&room_events(&alice, json!({ "search_term": "secret" })).await).len(), 3);
});

/// `POST /user_directory/search`: the user IDs found for `term`, and `limited`.
async fn find_users(client: &Client, term: &str, limit: Option<u64>) -> (Vec<String>, bool, Value) {
    let mut body = json!({ "search_term": term });
    if let Some(limit) = limit {
        body["limit"] = json!(limit);
    }
    let response = client.post(&format!("{V3}/user_directory/search"), body).await;
    let found = response.expect_status(200).clone();
    let ids = found["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|u| u["user_id"].as_str().expect("user_id").to_owned())
        .collect();
    (ids, found["limited"].as_bool().expect("limited"), found)
}

scenario!(the_user_directory_finds_room_mates_and_public_room_members_only, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "pw-alice-1").await;
    let bob = hs.client().register("bob", "pw-bob-1").await;
    let carol = hs.client().register("carol", "pw-carol-1").await;
    let dave = hs.client().register("dave", "pw-dave-1").await;
    let shared = alice.create_room(json!({ "preset": "private_chat" })).await;
    alice.invite_user(&shared, bob.me()).await;
    bob.join_room(&shared).await;
    carol.create_room(json!({ "preset": "public_chat" })).await;
    dave.create_room(json!({ "preset": "private_chat" })).await;
    let path = format!("{V3}/profile/{}/displayname", enc(bob.me()));
    bob.put(&path, json!({ "displayname": "Bobby Zebra" })).await.expect_status(200);

    assert_eq!(find_users(&alice, "bo", None).await.0, [bob.me()]);
    let (ids, _, found) = find_users(&alice, "zeb", None).await;
    assert_eq!(ids, [bob.me()], "a word of the display name matches");
    assert_eq!(found["results"][0]["display_name"], "Bobby Zebra");
    assert_eq!(find_users(&alice, "BOBBY zebra", None).await.0, [bob.me()]);
    assert_eq!(find_users(&alice, "CAR", None).await.0, [carol.me()], "members of public rooms");
    assert!(find_users(&alice, "dave", None).await.0.is_empty(), "a stranger stays hidden");
    assert!(find_users(&alice, "ebra", None).await.0.is_empty(), "only prefixes match");
    assert!(find_users(&alice, "%", None).await.0.is_empty(), "wildcards match literally");

    let path = format!("{V3}/profile/{}/displayname", enc(carol.me()));
    carol.put(&path, json!({ "displayname": "Carol Zebedee" })).await.expect_status(200);
    let (ids, limited, _) = find_users(&alice, "zeb", Some(1)).await;
    assert_eq!((ids, limited), (vec![bob.me().to_owned()], true));
    let (ids, limited, _) = find_users(&alice, "zeb", None).await;
    assert_eq!((ids, limited), (vec![bob.me().to_owned(), carol.me().to_owned()], false));
});
