//! ROOM-10: room upgrades (SCENARIOS.md › Rooms; spec: Client-Server API › Room upgrades).

use hearth_complement_tests::{Client, TestServer, client::enc, scenario};
use serde_json::{Value, json};

async fn state(client: &Client, room: &str, kind: &str) -> Value {
    let path = format!("/_matrix/client/v3/rooms/{}/state/{kind}/", enc(room));
    client.get(&path).await.expect_status(200).clone()
}

fn upgrade_path(room: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/upgrade", enc(room))
}

async fn join(client: &Client, room: &str) {
    client.post(&format!("/_matrix/client/v3/join/{}", enc(room)), json!({})).await.expect_status(200);
}

scenario!(room_10_upgrade_tombstones_the_old_room_and_carries_its_state_over, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let body = json!({
        "room_version": "10",
        "preset": "public_chat",
        "visibility": "public",
        "name": "Old name",
        "topic": "Old topic",
        "room_alias_name": "upgrademe",
        "power_level_content_override": { "users": { alice.me(): 100, bob.me(): 50 } },
    });
    let old = alice.create_room(body).await;
    join(&bob, &old).await;
    join(&carol, &old).await;

    let response = alice.post(&upgrade_path(&old), json!({ "new_version": "12" })).await;
    let new = response.expect_status(200)["replacement_room"].as_str().expect("replacement_room").to_owned();
    assert_ne!(new, old);

    // The old room points at the new one and ordinary users may no longer talk or invite.
    let tombstone = state(&alice, &old, "m.room.tombstone").await;
    assert_eq!(tombstone["replacement_room"], new.as_str(), "{tombstone}");
    let old_levels = state(&alice, &old, "m.room.power_levels").await;
    assert_eq!((old_levels["events_default"].clone(), old_levels["invite"].clone()), (json!(50), json!(50)));
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/t1", enc(&old));
    carol.put(&path, json!({ "msgtype": "m.text", "body": "hi" })).await.expect_error(403, "M_FORBIDDEN");

    // The new room names its predecessor and has the old state.
    let create = state(&alice, &new, "m.room.create").await;
    assert_eq!(create["predecessor"]["room_id"], old.as_str(), "{create}");
    assert_eq!(create["room_version"], "12");
    assert_eq!(state(&alice, &new, "m.room.name").await["name"], "Old name");
    assert_eq!(state(&alice, &new, "m.room.topic").await["topic"], "Old topic");
    assert_eq!(state(&alice, &new, "m.room.join_rules").await["join_rule"], "public");
    assert_eq!(state(&alice, &new, "m.room.history_visibility").await["history_visibility"], "shared");
    let alias = format!("#upgrademe:{}", hs.server_name);
    assert_eq!(state(&alice, &new, "m.room.canonical_alias").await["alias"], alias.as_str());
    // Power levels are copied, without the creator, whom v12 privileges by the create event.
    let levels = state(&alice, &new, "m.room.power_levels").await;
    assert_eq!(levels["users"], json!({ bob.me(): 50 }), "{levels}");
    assert_eq!(levels["events"]["m.room.tombstone"], 100);

    // The alias and the directory listing moved with the room.
    let resolved = alice.get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
    assert_eq!(resolved.expect_status(200)["room_id"], new.as_str());
    let listed = alice.get("/_matrix/client/v3/publicRooms").await.expect_status(200).clone();
    let rooms: Vec<&str> =
        listed["chunk"].as_array().expect("chunk").iter().filter_map(|r| r["room_id"].as_str()).collect();
    assert_eq!(rooms, vec![new.as_str()], "{listed}");

    // Members of the old room can follow into the new one.
    join(&bob, &new).await;
});

scenario!(room_10_only_users_who_may_send_a_tombstone_can_upgrade, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let outsider = hs.client().register("outsider", "passw0rd!").await;
    let room = alice.create_room(json!({ "preset": "public_chat" })).await;
    join(&bob, &room).await;

    bob.post(&upgrade_path(&room), json!({ "new_version": "12" })).await.expect_error(403, "M_FORBIDDEN");
    outsider
        .post(&upgrade_path(&room), json!({ "new_version": "12" }))
        .await
        .expect_error(403, "M_FORBIDDEN");
    alice
        .post(&upgrade_path(&room), json!({ "new_version": "999" }))
        .await
        .expect_error(400, "M_UNSUPPORTED_ROOM_VERSION");
    alice
        .post(&upgrade_path(&room), json!({ "new_version": "1" }))
        .await
        .expect_error(400, "M_UNSUPPORTED_ROOM_VERSION");

    // Nothing happened: no tombstone, and alice is still in just the one room.
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.tombstone/", enc(&room));
    alice.get(&path).await.expect_error(404, "M_NOT_FOUND");
    let joined = alice.get("/_matrix/client/v3/joined_rooms").await.expect_status(200).clone();
    assert_eq!(joined["joined_rooms"], json!([room]));
});

scenario!(room_10_upgrading_out_of_v12_keeps_the_creator_powerful, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let body = json!({ "room_version": "12", "power_level_content_override": { "users": { bob.me(): 50 } } });
    let old = alice.create_room(body).await;
    let response = alice.post(&upgrade_path(&old), json!({ "new_version": "11" })).await;
    let new = response.expect_status(200)["replacement_room"].as_str().expect("replacement_room").to_owned();

    let create = state(&alice, &new, "m.room.create").await;
    assert_eq!(create["room_version"], "11");
    assert_eq!(create["predecessor"]["room_id"], old.as_str());
    let levels = state(&alice, &new, "m.room.power_levels").await;
    assert_eq!(levels["users"], json!({ alice.me(): 100, bob.me(): 50 }), "{levels}");
    // And she can still manage the new room.
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", enc(&new));
    alice.put(&path, json!({ "topic": "moved" })).await.expect_status(200);
});
