//! ROOM-1 and ROOM-9 (SCENARIOS.md › Rooms & membership) plus the room directory: aliases,
//! canonical alias checks, visibility, and `/publicRooms` paging and search.

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

async fn join(client: &Client, room_id: &str) {
    client.post(&format!("{V3}/join/{}", enc(room_id)), json!({})).await.expect_status(200);
}

fn alias_path(alias: &str) -> String {
    format!("{V3}/directory/room/{}", enc(alias))
}

async fn put_state(
    client: &Client,
    room_id: &str,
    kind: &str,
    content: Value,
) -> hearth_complement_tests::Response {
    client.put(&format!("{V3}/rooms/{}/state/{kind}/", enc(room_id)), content).await
}

/// Raises `user` to `level` in the room's power levels, as `admin`.
async fn set_power(admin: &Client, room_id: &str, user: &str, level: i64) {
    let path = format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(room_id));
    let mut levels = admin.get(&path).await.expect_status(200).clone();
    levels["users"][user] = json!(level);
    admin.put(&path, levels).await.expect_status(200);
}

async fn public_rooms(client: &Client, body: Value) -> Value {
    client.post(&format!("{V3}/publicRooms"), body).await.expect_status(200).clone()
}

fn listed<'a>(page: &'a Value, room_id: &str) -> Option<&'a Value> {
    page["chunk"].as_array().expect("chunk").iter().find(|r| r["room_id"] == room_id)
}

scenario!(room_1_public_chat_has_its_state_alias_and_directory_entry, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let alias = format!("#theroom:{}", hs.server_name);
    let room_id = alice
        .create_room(json!({
            "preset": "public_chat", "visibility": "public", "name": "The Room", "topic": "Tea",
            "room_alias_name": "theroom",
        }))
        .await;

    let state = alice.get(&format!("{V3}/rooms/{}/state", enc(&room_id))).await;
    let state = state.expect_status(200).as_array().expect("state list").clone();
    let content = |kind: &str, key: &str| {
        state.iter().find(|e| e["type"] == kind && e["state_key"] == key).map(|e| e["content"].clone())
    };
    assert!(content("m.room.create", "").is_some(), "create event in {state:?}");
    assert_eq!(content("m.room.member", alice.me()).expect("creator member")["membership"], "join");
    assert!(content("m.room.power_levels", "").is_some());
    assert_eq!(content("m.room.join_rules", "").expect("join rules")["join_rule"], "public");
    assert!(content("m.room.history_visibility", "").is_some());
    assert_eq!(content("m.room.name", "").expect("name")["name"], "The Room");
    assert_eq!(content("m.room.topic", "").expect("topic")["topic"], "Tea");
    assert_eq!(content("m.room.canonical_alias", "").expect("canonical alias")["alias"], alias);

    let resolved = hs.client().get(&alias_path(&alias)).await;
    let resolved = resolved.expect_status(200);
    assert_eq!(resolved["room_id"], room_id);
    assert!(resolved["servers"].as_array().expect("servers").contains(&json!(hs.server_name)));

    let page = hs.client().get(&format!("{V3}/publicRooms")).await.expect_status(200).clone();
    let entry = listed(&page, &room_id).expect("the room is listed");
    assert_eq!(entry["name"], "The Room");
    assert_eq!(entry["topic"], "Tea");
    assert_eq!(entry["canonical_alias"], alias);
    assert_eq!(entry["num_joined_members"], 1);
    assert_eq!(entry["world_readable"], false);
    assert_eq!(entry["guest_can_join"], false);
    assert!(entry["join_rule"].is_null() || entry["join_rule"] == "public", "{entry}");
});

scenario!(room_9_aliases_are_unique_and_deleted_by_their_creator_or_the_powerful, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let nine = format!("#nine:{}", hs.server_name);

    alice.put(&alias_path(&nine), json!({ "room_id": room_id })).await.expect_status(200);
    alice.put(&alias_path(&nine), json!({ "room_id": room_id })).await.expect_error(409, "M_UNKNOWN");

    let snowman = format!("#☃-schneemann:{}", hs.server_name);
    alice.put(&alias_path(&snowman), json!({ "room_id": room_id })).await.expect_status(200);
    assert_eq!(hs.client().get(&alias_path(&snowman)).await.expect_status(200)["room_id"], room_id);

    // Only members may point aliases at a room; only this server's aliases are kept here.
    let carols = format!("#carols:{}", hs.server_name);
    carol.put(&alias_path(&carols), json!({ "room_id": room_id })).await.expect_error(403, "M_FORBIDDEN");
    let remote = alice.put(&alias_path("#elsewhere:other.example"), json!({ "room_id": room_id })).await;
    remote.expect_error(400, "M_INVALID_PARAM");
    hs.client().get(&alias_path("#elsewhere:other.example")).await.expect_error(404, "M_NOT_FOUND");

    // Bob (power 0) deletes his own alias, but not Alice's until his power allows.
    join(&bob, &room_id).await;
    let bobs = format!("#bobs:{}", hs.server_name);
    bob.put(&alias_path(&bobs), json!({ "room_id": room_id })).await.expect_status(200);
    bob.delete(&alias_path(&bobs), json!({})).await.expect_status(200);
    hs.client().get(&alias_path(&bobs)).await.expect_error(404, "M_NOT_FOUND");
    bob.delete(&alias_path(&nine), json!({})).await.expect_error(403, "M_FORBIDDEN");
    set_power(&alice, &room_id, bob.me(), 50).await;
    bob.delete(&alias_path(&nine), json!({})).await.expect_status(200);

    alice.delete(&alias_path(&nine), json!({})).await.expect_error(404, "M_NOT_FOUND");
    hs.client().get(&alias_path(&nine)).await.expect_error(404, "M_NOT_FOUND");

    // The room's local aliases are visible to members only.
    let aliases_path = format!("{V3}/rooms/{}/aliases", enc(&room_id));
    assert_eq!(alice.get(&aliases_path).await.expect_status(200)["aliases"], json!([snowman]));
    carol.get(&aliases_path).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(room_9_canonical_alias_must_name_aliases_of_the_room, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "room_alias_name": "mine" })).await;
    alice.create_room(json!({ "room_alias_name": "theirs" })).await;
    let (mine, theirs, missing) = (
        format!("#mine:{}", hs.server_name),
        format!("#theirs:{}", hs.server_name),
        format!("#missing:{}", hs.server_name),
    );

    for content in [
        json!({ "alias": missing }),
        json!({ "alias": theirs }),
        json!({ "alias": mine, "alt_aliases": [missing] }),
    ] {
        let response = put_state(&alice, &room_id, "m.room.canonical_alias", content.clone()).await;
        assert_eq!(response.status, 400, "{content}: {}", response.body);
        assert_eq!(response.body["errcode"], "M_BAD_ALIAS", "{content}");
    }
    for content in [json!({ "alias": "not-an-alias" }), json!({ "alias": mine, "alt_aliases": "#x:y" })] {
        let response = put_state(&alice, &room_id, "m.room.canonical_alias", content.clone()).await;
        assert_eq!(response.status, 400, "{content}: {}", response.body);
        assert_eq!(response.body["errcode"], "M_INVALID_PARAM", "{content}");
    }
    let second = format!("#mine-too:{}", hs.server_name);
    alice.put(&alias_path(&second), json!({ "room_id": room_id })).await.expect_status(200);
    let valid = json!({ "alias": mine, "alt_aliases": [second] });
    put_state(&alice, &room_id, "m.room.canonical_alias", valid).await.expect_status(200);

    // Removing an alias from the directory does not block re-sending the event that names it.
    alice.delete(&alias_path(&second), json!({})).await.expect_status(200);
    let unchanged = json!({ "alias": mine, "alt_aliases": [second] });
    put_state(&alice, &room_id, "m.room.canonical_alias", unchanged).await.expect_status(200);

    let initial = json!({
        "initial_state": [{ "type": "m.room.canonical_alias", "state_key": "", "content": { "alias": missing } }],
    });
    alice.post(&format!("{V3}/createRoom"), initial).await.expect_error(400, "M_BAD_ALIAS");
});

scenario!(directory_visibility_is_changed_only_by_the_powerful, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let path = format!("{V3}/directory/list/room/{}", enc(&room_id));

    assert_eq!(hs.client().get(&path).await.expect_status(200)["visibility"], "private");
    join(&bob, &room_id).await;
    bob.put(&path, json!({ "visibility": "public" })).await.expect_error(403, "M_FORBIDDEN");
    alice.put(&path, json!({ "visibility": "public" })).await.expect_status(200);
    assert_eq!(hs.client().get(&path).await.expect_status(200)["visibility"], "public");
    let page = public_rooms(&alice, json!({})).await;
    assert!(listed(&page, &room_id).is_some(), "published room listed: {page}");

    alice.put(&path, json!({ "visibility": "private" })).await.expect_status(200);
    let page = public_rooms(&alice, json!({})).await;
    assert!(listed(&page, &room_id).is_none(), "unpublished room gone: {page}");

    let unknown = format!("{V3}/directory/list/room/{}", enc(&format!("!nope:{}", hs.server_name)));
    hs.client().get(&unknown).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(public_rooms_pages_forwards_and_back_without_gaps, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(alice.create_room(json!({ "visibility": "public", "name": format!("room {i}") })).await);
    }
    alice.create_room(json!({ "visibility": "private", "name": "hidden" })).await;
    join(&bob, &created[3]).await;

    let first = public_rooms(&alice, json!({ "limit": 2 })).await;
    assert_eq!(first["total_room_count_estimate"], 5);
    assert_eq!(first["chunk"][0]["room_id"], created[3], "most members first: {first}");
    assert_eq!(first["chunk"][0]["num_joined_members"], 2);
    assert!(first.get("prev_batch").is_none_or(Value::is_null), "first page has no prev_batch");

    let mut seen: Vec<String> = Vec::new();
    let mut page = first.clone();
    loop {
        let chunk = page["chunk"].as_array().expect("chunk");
        assert!(chunk.len() <= 2, "limit honoured: {page}");
        seen.extend(chunk.iter().map(|r| r["room_id"].as_str().expect("room_id").to_owned()));
        let Some(next) = page["next_batch"].as_str().map(str::to_owned) else { break };
        let get = alice.get(&format!("{V3}/publicRooms?limit=2&since={next}")).await;
        let previous = page;
        page = get.expect_status(200).clone();
        let back = page["prev_batch"].as_str().expect("later pages have prev_batch");
        let again = public_rooms(&alice, json!({ "limit": 2, "since": back })).await;
        assert_eq!(again["chunk"], previous["chunk"], "prev_batch leads back");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 5, "every listed room once: {seen:?}");
    assert_eq!(sorted.len(), 5, "no duplicates: {seen:?}");

    let bad = alice.post(&format!("{V3}/publicRooms"), json!({ "since": "garbage" })).await;
    bad.expect_error(400, "M_INVALID_PARAM");
});

scenario!(public_rooms_search_matches_name_topic_and_alias_in_any_case, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let by_name = alice.create_room(json!({ "visibility": "public", "name": "Afternoon TEA" })).await;
    let by_topic = alice.create_room(json!({ "visibility": "public", "topic": "all about tea" })).await;
    let by_alias = alice.create_room(json!({ "visibility": "public", "room_alias_name": "teahouse" })).await;
    alice.create_room(json!({ "visibility": "public", "name": "Coffee", "topic": "beans" })).await;
    alice.create_room(json!({ "visibility": "public", "name": "50% off" })).await;

    let page = public_rooms(&alice, json!({ "filter": { "generic_search_term": "tEa" } })).await;
    let mut found: Vec<&str> =
        page["chunk"].as_array().expect("chunk").iter().filter_map(|r| r["room_id"].as_str()).collect();
    found.sort_unstable();
    let mut expected = vec![by_name.as_str(), by_topic.as_str(), by_alias.as_str()];
    expected.sort_unstable();
    assert_eq!(found, expected, "{page}");
    assert_eq!(page["total_room_count_estimate"], 3);

    let percent = public_rooms(&alice, json!({ "filter": { "generic_search_term": "0%" } })).await;
    assert_eq!(percent["chunk"].as_array().expect("chunk").len(), 1, "% is literal: {percent}");
});

scenario!(public_rooms_entries_carry_the_room_summary, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let room_id = alice.create_room(json!({
            "visibility": "public",
            "preset": "private_chat",
            "creation_content": { "type": "m.space" },
            "initial_state": [
                { "type": "m.room.avatar", "state_key": "", "content": { "url": "mxc://example.org/avatar" } },
                { "type": "m.room.history_visibility", "state_key": "", "content": { "history_visibility": "world_readable" } },
                { "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } },
            ],
        }),
    )
    .await;
    let page = public_rooms(&alice, json!({})).await;
    let entry = listed(&page, &room_id).expect("listed");
    assert_eq!(entry["avatar_url"], "mxc://example.org/avatar");
    assert_eq!(entry["world_readable"], true);
    assert_eq!(entry["guest_can_join"], true, "private_chat lets guests join");
    assert_eq!(entry["join_rule"], "knock");
    assert_eq!(entry["room_type"], "m.space");
    assert_eq!(entry["num_joined_members"], 1);
});
