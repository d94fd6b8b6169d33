//! Many sends at once (the group-commit path): nothing lost, nothing doubled, repeated
//! transactions answered with the first event, every room's history intact.

use std::collections::{HashMap, HashSet};

use hearth_complement_tests::{Client, TestServer, scenario};
use serde_json::json;

async fn history(client: &Client, room_id: &str) -> Vec<String> {
    let path = format!("/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=1000");
    let body = client.get(&path).await.expect_status(200).clone();
    body["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
        .collect()
}

scenario!(concurrent_sends_are_each_stored_once_in_every_room, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let rooms = [
        alice.create_room(json!({ "preset": "public_chat" })).await,
        alice.create_room(json!({ "preset": "public_chat" })).await,
        alice.create_room(json!({ "preset": "public_chat" })).await,
    ];
    for room in &rooms {
        bob.post(&format!("/_matrix/client/v3/join/{room}"), json!({})).await.expect_status(200);
    }

    // 90 distinct sends plus, for every tenth, the same transaction again, all in flight at once.
    let mut sends = Vec::new();
    for i in 0..90 {
        let client = if i % 2 == 0 { alice.clone() } else { bob.clone() };
        let room = rooms[i % 3].clone();
        let copies = if i % 10 == 0 { 2 } else { 1 };
        for _ in 0..copies {
            let (client, room) = (client.clone(), room.clone());
            sends.push(tokio::spawn(async move {
                let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/txn{i}");
                let response =
                    client.put(&path, json!({ "msgtype": "m.text", "body": format!("message {i}") })).await;
                let id = response.expect_status(200)["event_id"].as_str().expect("event_id").to_owned();
                (i, room, id)
            }));
        }
    }
    let mut by_send: HashMap<usize, HashSet<String>> = HashMap::new();
    let mut by_room: HashMap<String, HashSet<String>> = HashMap::new();
    for send in sends {
        let (i, room, id) = send.await.expect("send task");
        by_send.entry(i).or_default().insert(id.clone());
        by_room.entry(room).or_default().insert(id);
    }
    assert_eq!(by_send.len(), 90);
    assert!(by_send.values().all(|ids| ids.len() == 1), "a repeated transaction got a second event");

    for room in &rooms {
        let stored = history(&alice, room).await;
        let unique: HashSet<String> = stored.iter().cloned().collect();
        assert_eq!(unique.len(), stored.len(), "an event appears twice in {room}");
        assert_eq!(unique, by_room[room], "the history of {room} differs from what was acknowledged");
    }
});
