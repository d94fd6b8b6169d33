//! KEY-5: a client queries and claims the keys of a user on another server, answered through
//! federation `/user/keys/query` and `/user/keys/claim` (SCENARIOS.md › End-to-end encryption).

use hearth_complement_tests::{
    Client, Cluster, FakePeer, TestServer, client::enc, e2ee::login_with_keys, fake_peer::Signing,
    federation::enable_federation, scenario,
};
use reqwest::Method;
use ruma::{
    CanonicalJsonObject,
    serde::Base64,
    signatures::{Ed25519KeyPair, PublicKeyMap, PublicKeySet, verify_json},
};
use serde_json::json;

const PASSWORD: &str = "sUp3rs3cret";

/// Bob on `hs`, logged in as `BOBDEV` (display name "bob's BOBDEV") with identity keys and one one-time key.
async fn bob_with_keys(hs: &TestServer) -> (Client, Ed25519KeyPair) {
    hs.client().register("bob", PASSWORD).await;
    login_with_keys(hs, "bob", PASSWORD, "BOBDEV").await
}

scenario!(key_5_keys_of_a_user_on_another_server_are_queried_and_claimed_over_federation, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    servers[0].add_federation_peer("down.test", "https://127.0.0.1:1");
    let (hs1, hs2) = (&servers[0], &servers[1]);
    let (_bob, bob_key) = bob_with_keys(hs2).await;
    let bob_id = hs2.user_id("bob");
    let alice = hs1.client().register("alice", PASSWORD).await;

    let query = json!({ "device_keys": { bob_id.clone(): [], "@x:down.test": [] } });
    let queried = alice.post("/_matrix/client/v3/keys/query", query).await.expect_status(200).clone();
    let device = &queried["device_keys"][&bob_id]["BOBDEV"];
    assert_eq!(device["device_id"], "BOBDEV", "{queried}");
    let mut unsigned_free: CanonicalJsonObject =
        serde_json::from_value(device.clone()).expect("canonical JSON");
    unsigned_free.remove("unsigned");
    let keys = PublicKeyMap::from([(
        bob_id.clone(),
        PublicKeySet::from([("ed25519:BOBDEV".to_owned(), Base64::new(bob_key.public_key().to_vec()))]),
    )]);
    verify_json(&keys, &unsigned_free).expect("Bob's signature survives the trip");
    assert!(queried["failures"].get(&hs2.server_name).is_none(), "{queried}");
    assert!(queried["failures"]["down.test"].is_object(), "an unreachable server is a failure: {queried}");

    let claim = json!({ "one_time_keys": { bob_id.clone(): { "BOBDEV": "signed_curve25519" } } });
    let claimed = alice.post("/_matrix/client/v3/keys/claim", claim.clone()).await.expect_status(200).clone();
    let key = &claimed["one_time_keys"][&bob_id]["BOBDEV"]["signed_curve25519:AAAAAQ"];
    assert_eq!(key["key"], "onetimeonetimeonetimeonetimeonetimeonetime1", "{claimed}");
    let again = alice.post("/_matrix/client/v3/keys/claim", claim).await.expect_status(200).clone();
    assert!(
        again["one_time_keys"][&bob_id]["BOBDEV"].is_null(),
        "a one-time key is handed out once: {again}"
    );
});

scenario!(another_server_lists_a_users_devices_with_their_keys, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let (_bob, _key) = bob_with_keys(&hs).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let bob_id = hs.user_id("bob");

    let path = format!("/_matrix/federation/v1/user/devices/{}", enc(&bob_id));
    let devices =
        peer.request(&hs, Method::GET, &path, None, Signing::Valid).await.expect_status(200).clone();
    assert_eq!(devices["user_id"], bob_id);
    assert!(devices["stream_id"].is_u64(), "{devices}");
    let listed = devices["devices"].as_array().expect("devices");
    assert_eq!(listed.len(), 1, "{devices}");
    assert_eq!(listed[0]["device_id"], "BOBDEV");
    assert_eq!(listed[0]["device_display_name"], "bob's BOBDEV");
    assert_eq!(listed[0]["keys"]["device_id"], "BOBDEV");

    let unsigned = peer.request(&hs, Method::GET, &path, None, Signing::Missing).await;
    unsigned.expect_error(401, "M_UNAUTHORIZED");
});
