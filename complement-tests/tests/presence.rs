//! Presence through its own endpoints (SCENARIOS.md › EPH-4, storage half): users set their own
//! presence and status message and read it back; others see it when they share a room. (Its
//! delivery through `/sync` is tested with sync.) Users the server no longer sees go offline.

use hearth_complement_tests::{TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";

fn status(user: &str) -> String {
    format!("{V3}/presence/{}/status", enc(user))
}

scenario!(eph_4_presence_round_trips_with_its_status_message, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();

    // Never set: offline, with nothing else to say.
    assert_eq!(*alice.get(&status(&me)).await.expect_status(200), json!({ "presence": "offline" }));

    let body = json!({ "presence": "online", "status_msg": "In a meeting 🗓" });
    alice.put(&status(&me), body).await.expect_status(200);
    let online = alice.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!(online["presence"], "online");
    assert_eq!(online["status_msg"], "In a meeting 🗓");
    assert_eq!(online["currently_active"], true, "just set: active now");
    let ago = online["last_active_ago"].as_u64().expect("last_active_ago in ms");
    assert!(ago < 60_000, "setting presence is activity; last_active_ago = {ago}");

    alice.put(&status(&me), json!({ "presence": "unavailable" })).await.expect_status(200);
    let away = alice.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!(away["presence"], "unavailable");
    assert!(away.get("status_msg").is_none_or(Value::is_null), "a PUT without status_msg clears it: {away}");
    assert!(away.get("currently_active").is_none(), "only online users are currently active: {away}");

    alice.put(&status(&me), json!({ "presence": "offline", "status_msg": "gone" })).await.expect_status(200);
    let gone = alice.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!((gone["presence"].clone(), gone["status_msg"].clone()), (json!("offline"), json!("gone")));
});

scenario!(presence_is_set_only_by_its_user_with_a_known_state, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let me = alice.me().to_owned();

    bob.put(&status(&me), json!({ "presence": "online" })).await.expect_error(403, "M_FORBIDDEN");
    alice.put(&status(&me), json!({ "presence": "busy" })).await.expect_error(400, "M_INVALID_PARAM");
    alice.put(&status(&me), json!({ "status_msg": "no state" })).await.expect_error(400, "M_BAD_JSON");
    assert_eq!(alice.get(&status(&me)).await.expect_status(200)["presence"], "offline", "nothing was stored");
});

scenario!(presence_is_visible_to_users_sharing_a_room, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let me = alice.me().to_owned();
    alice.put(&status(&me), json!({ "presence": "online", "status_msg": "hi" })).await.expect_status(200);

    bob.get(&status(&me)).await.expect_error(403, "M_FORBIDDEN");
    let nobody = format!("@nobody:{}", me.split_once(':').expect("server name").1);
    bob.get(&status(&nobody)).await.expect_error(404, "M_NOT_FOUND");
    bob.get(&status("@stranger:example.org")).await.expect_error(403, "M_FORBIDDEN");

    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.post(&format!("{V3}/rooms/{}/join", enc(&room_id)), json!({})).await.expect_status(200);
    let seen = bob.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!((seen["presence"].clone(), seen["status_msg"].clone()), (json!("online"), json!("hi")));
    carol.get(&status(&me)).await.expect_error(403, "M_FORBIDDEN");
    assert_eq!(alice.get(&status(bob.me())).await.expect_status(200)["presence"], "offline");

    bob.post(&format!("{V3}/rooms/{}/leave", enc(&room_id)), json!({})).await.expect_status(200);
    bob.get(&status(&me)).await.expect_error(403, "M_FORBIDDEN");
});

scenario!(presence_goes_offline_once_the_user_is_no_longer_seen, |backend| {
    let hs = TestServer::start_with(backend, |config| config.presence.offline_after_secs = 1).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let carol = hs.client().register("carol", "passw0rd!").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    bob.join_room(&room_id).await;
    carol.join_room(&room_id).await;
    let me = alice.me().to_owned();
    alice.put(&status(&me), json!({ "presence": "online", "status_msg": "here" })).await.expect_status(200);
    let since = bob.sync(None, None, 0).await["next_batch"].as_str().expect("next_batch").to_owned();

    // Carol keeps syncing (online by default) for three times the limit; Alice is silent.
    let started = std::time::Instant::now();
    let mut since_carol: Option<String> = None;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        let sync = carol.sync(since_carol.as_deref(), None, 200).await;
        since_carol = sync["next_batch"].as_str().map(str::to_owned);
    }
    assert_eq!(bob.get(&status(carol.me())).await.expect_status(200)["presence"], "online", "still seen");

    let gone = bob.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!((gone["presence"].clone(), gone["status_msg"].clone()), (json!("offline"), json!("here")));
    // Bob's sync delivers the change like any other.
    let sync = bob.sync(Some(&since), None, 0).await;
    let events = sync["presence"]["events"].as_array().cloned().unwrap_or_default();
    let alice_now: Vec<&Value> = events.iter().filter(|e| e["sender"] == json!(me)).collect();
    assert_eq!(alice_now.len(), 1, "{events:?}");
    assert_eq!(alice_now[0]["content"]["presence"], "offline");
});

scenario!(sending_is_activity_and_syncing_is_not, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let me = alice.me().to_owned();
    let room = alice.create_room(json!({})).await;

    alice
        .put(&status(&me), json!({ "presence": "unavailable", "status_msg": "away" }))
        .await
        .expect_status(200);
    // A client syncing as `unavailable` says nothing new.
    alice.get(&format!("{V3}/sync?timeout=0&set_presence=unavailable")).await.expect_status(200);
    assert_eq!(alice.get(&status(&me)).await.expect_status(200)["presence"], "unavailable");

    // Sending a message is an action: an idle user is back online, status kept.
    alice.send_text(&room, "back").await;
    let back = alice.get(&status(&me)).await.expect_status(200).clone();
    assert_eq!((back["presence"].clone(), back["status_msg"].clone()), (json!("online"), json!("away")));
    assert_eq!(back["currently_active"], true);

    // An offline user stays offline when sending.
    alice.put(&status(&me), json!({ "presence": "offline" })).await.expect_status(200);
    alice.send_text(&room, "hidden").await;
    assert_eq!(alice.get(&status(&me)).await.expect_status(200)["presence"], "offline");
});
