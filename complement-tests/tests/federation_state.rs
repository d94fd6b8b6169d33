//! FED-16 (SCENARIOS.md › Federation): two servers cut apart make conflicting state changes;
//! once they reach each other again, both report the same room state (state resolution v2).

use std::time::Duration;

use hearth_complement_tests::{
    Client, Cluster,
    client::{enc, eventually},
    scenario,
};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const DEADLINE: Duration = Duration::from_secs(30);

async fn state(client: &Client, room_id: &str, kind: &str) -> Value {
    let path = format!("{V3}/rooms/{}/state/{kind}/", enc(room_id));
    client.get(&path).await.body.clone()
}

scenario!(fed_16_servers_cut_apart_converge_on_the_same_state, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    let alice = servers[0].client().register("alice", "password1234").await;
    let bob = servers[1].client().register("bob", "password1234").await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let hs1 = servers[0].server_name.clone();
    bob.post(&format!("{V3}/join/{}?server_name={}", enc(&room_id), enc(&hs1)), json!({}))
        .await
        .expect_status(200);
    // (Alice, the creator, has unlimited power in v12 rooms and is not listed.)
    let levels = json!({ "users": { bob.me(): 100 }, "state_default": 50 });
    let path = format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room_id));
    alice.put(&path, levels).await.expect_status(200);
    eventually("Bob's power on hs2", DEADLINE, || async {
        (state(&bob, &room_id, "m.room.power_levels").await["users"][bob.me()] == 100).then_some(())
    })
    .await;

    // Cut apart: each server's requests to the other fail.
    let urls: Vec<(String, String)> =
        servers.iter().map(|s| (s.server_name.clone(), s.federation_url())).collect();
    servers[0].add_federation_peer(&urls[1].0, "https://127.0.0.1:9");
    servers[1].add_federation_peer(&urls[0].0, "https://127.0.0.1:9");
    let topic = format!("{V3}/rooms/{}/state/m.room.topic/", enc(&room_id));
    alice.put(&topic, json!({ "topic": "Alice's topic" })).await.expect_status(200);
    bob.put(&topic, json!({ "topic": "Bob's topic" })).await.expect_status(200);
    let name = format!("{V3}/rooms/{}/state/m.room.name/", enc(&room_id));
    bob.put(&name, json!({ "name": "Bob's name" })).await.expect_status(200);

    // Together again.
    servers[0].add_federation_peer(&urls[1].0, &urls[1].1);
    servers[1].add_federation_peer(&urls[0].0, &urls[0].1);
    let (topic, name) = eventually("the same state on both servers", DEADLINE, || async {
        let on_1 =
            (state(&alice, &room_id, "m.room.topic").await, state(&alice, &room_id, "m.room.name").await);
        let on_2 = (state(&bob, &room_id, "m.room.topic").await, state(&bob, &room_id, "m.room.name").await);
        (on_1 == on_2 && on_1.1["name"] == "Bob's name").then_some(on_1)
    })
    .await;
    assert!(
        ["Alice's topic", "Bob's topic"].contains(&topic["topic"].as_str().unwrap_or_default()),
        "{topic}"
    );
    assert_eq!(name["name"], "Bob's name", "an unconflicted change from either side stays");
    // A message after the merge builds on both branches and reaches the other side.
    let after = alice.send_text(&room_id, "merged").await;
    eventually("the message after the merge on hs2", DEADLINE, || async {
        let path = format!("{V3}/rooms/{}/event/{}", enc(&room_id), enc(&after));
        (bob.get(&path).await.status == 200).then_some(())
    })
    .await;
});
