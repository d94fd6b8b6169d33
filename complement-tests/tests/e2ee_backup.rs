//! KEY-6 (SCENARIOS.md › End-to-end encryption): server-side key backups. Versions are created,
//! read, updated and deleted; session keys go into the current version, where a better key
//! replaces a worse one and not the reverse, and `etag` / `count` follow the keys.

use hearth_complement_tests::{Client, Response, TestServer, client::enc, scenario};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const PASSWORD: &str = "passw0rd!";
const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";
const ROOM: &str = "!room:example.org";

fn version_body(public_key: &str) -> Value {
    json!({ "algorithm": ALGORITHM, "auth_data": { "public_key": public_key, "signatures": {} } })
}

async fn create_version(client: &Client, public_key: &str) -> String {
    let answer = client.post(&format!("{V3}/room_keys/version"), version_body(public_key)).await;
    answer.expect_status(200)["version"].as_str().expect("version").to_owned()
}

/// A session key with the metadata the replacement rules look at; `tag` marks its data.
fn session_key(is_verified: bool, first_message_index: u64, forwarded_count: u64, tag: &str) -> Value {
    json!({
        "first_message_index": first_message_index,
        "forwarded_count": forwarded_count,
        "is_verified": is_verified,
        "session_data": { "ephemeral": "ZXBo", "ciphertext": tag, "mac": "bWFj" },
    })
}

fn session_path(version: &str, room_id: &str, session_id: &str) -> String {
    format!("{V3}/room_keys/keys/{}/{}?version={}", enc(room_id), enc(session_id), enc(version))
}

async fn put_session(client: &Client, version: &str, session_id: &str, key: Value) -> Response {
    client.put(&session_path(version, ROOM, session_id), key).await
}

/// The `ciphertext` tag of the stored key of `session_id`.
async fn stored_tag(client: &Client, version: &str, session_id: &str) -> Value {
    let key = client.get(&session_path(version, ROOM, session_id)).await;
    key.expect_status(200)["session_data"]["ciphertext"].clone()
}

scenario!(key_6_a_created_version_becomes_the_current_backup, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    alice.get(&format!("{V3}/room_keys/version")).await.expect_error(404, "M_NOT_FOUND");

    let version = create_version(&alice, "a2V5").await;
    let current = alice.get(&format!("{V3}/room_keys/version")).await.expect_status(200).clone();
    assert_eq!(current["version"], version.as_str());
    assert_eq!(current["algorithm"], ALGORITHM);
    assert_eq!(current["auth_data"], version_body("a2V5")["auth_data"]);
    assert_eq!(current["count"], 0);
    assert!(current["etag"].is_string(), "{current}");
    let by_id = alice.get(&format!("{V3}/room_keys/version/{}", enc(&version))).await;
    assert_eq!(by_id.expect_status(200), &current);

    bob.get(&format!("{V3}/room_keys/version/{}", enc(&version))).await.expect_error(404, "M_NOT_FOUND");
    bob.get(&format!("{V3}/room_keys/version")).await.expect_error(404, "M_NOT_FOUND");

    let newer = create_version(&alice, "bmV3").await;
    assert_ne!(newer, version);
    let current = alice.get(&format!("{V3}/room_keys/version")).await.expect_status(200).clone();
    assert_eq!(current["version"], newer.as_str(), "the newest version is the current one");
});

scenario!(key_6_a_better_key_replaces_the_stored_one_and_a_worse_one_does_not, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let version = create_version(&alice, "a2V5").await;

    let first = put_session(&alice, &version, "s1", session_key(false, 5, 1, "first")).await;
    let first = first.expect_status(200).clone();
    assert_eq!(first["count"], 1);

    let worse = put_session(&alice, &version, "s1", session_key(false, 6, 0, "worse")).await;
    assert_eq!(worse.expect_status(200), &first, "nothing changed: same etag and count");
    assert_eq!(stored_tag(&alice, &version, "s1").await, "first");

    let more_forwarded = put_session(&alice, &version, "s1", session_key(false, 5, 2, "forwarded")).await;
    assert_eq!(more_forwarded.expect_status(200)["etag"], first["etag"]);

    let lower_index = put_session(&alice, &version, "s1", session_key(false, 3, 4, "lower")).await;
    let lower_index = lower_index.expect_status(200).clone();
    assert_ne!(lower_index["etag"], first["etag"], "the keys changed");
    assert_eq!(lower_index["count"], 1);
    assert_eq!(stored_tag(&alice, &version, "s1").await, "lower");

    put_session(&alice, &version, "s1", session_key(true, 9, 9, "verified")).await.expect_status(200);
    assert_eq!(stored_tag(&alice, &version, "s1").await, "verified", "a verified key beats a lower index");
    put_session(&alice, &version, "s1", session_key(false, 0, 0, "unverified")).await.expect_status(200);
    assert_eq!(stored_tag(&alice, &version, "s1").await, "verified");
    put_session(&alice, &version, "s1", session_key(true, 9, 8, "less forwarded")).await.expect_status(200);
    assert_eq!(stored_tag(&alice, &version, "s1").await, "less forwarded");

    let many = json!({ "rooms": {
        ROOM: { "sessions": { "s2": session_key(false, 0, 0, "two"), "s3": session_key(false, 0, 0, "three") } },
        "!other:example.org": { "sessions": { "s4": session_key(false, 0, 0, "four") } },
    }});
    let answer = alice.put(&format!("{V3}/room_keys/keys?version={}", enc(&version)), many).await;
    assert_eq!(answer.expect_status(200)["count"], 4);

    let info = alice.get(&format!("{V3}/room_keys/version")).await.expect_status(200).clone();
    assert_eq!(info["count"], 4);
    assert_eq!(info["etag"], answer.body["etag"], "the version reports the etag of the last change");
});

scenario!(key_6_keys_go_only_to_the_current_version, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let missing = put_session(&alice, "1", "s1", session_key(false, 0, 0, "x")).await;
    missing.expect_error(404, "M_NOT_FOUND");

    let old = create_version(&alice, "b2xk").await;
    let current = create_version(&alice, "bmV3").await;
    let refused = put_session(&alice, &old, "s1", session_key(false, 0, 0, "x")).await;
    refused.expect_error(403, "M_WRONG_ROOM_KEYS_VERSION");
    assert_eq!(refused.body["current_version"], current.as_str());
    put_session(&alice, &current, "s1", session_key(false, 0, 0, "x")).await.expect_status(200);
});

scenario!(key_6_keys_are_read_and_deleted_by_session_room_or_version, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let version = create_version(&alice, "a2V5").await;
    let v = enc(&version);
    let keys = json!({ "rooms": {
        ROOM: { "sessions": { "s1": session_key(false, 0, 0, "one"), "s2": session_key(false, 0, 0, "two") } },
        "!other:example.org": { "sessions": { "s3": session_key(true, 1, 0, "three") } },
    }});
    alice.put(&format!("{V3}/room_keys/keys?version={v}"), keys.clone()).await.expect_status(200);

    let all = alice.get(&format!("{V3}/room_keys/keys?version={v}")).await.expect_status(200).clone();
    assert_eq!(all, keys, "everything comes back as stored");
    let room = alice.get(&format!("{V3}/room_keys/keys/{}?version={v}", enc(ROOM))).await;
    assert_eq!(room.expect_status(200), &keys["rooms"][ROOM]);
    let empty = alice.get(&format!("{V3}/room_keys/keys/{}?version={v}", enc("!none:example.org"))).await;
    assert_eq!(empty.expect_status(200), &json!({ "sessions": {} }));
    alice.get(&session_path(&version, ROOM, "nosuch")).await.expect_error(404, "M_NOT_FOUND");

    let deleted = alice.delete(&session_path(&version, ROOM, "s1"), json!({})).await;
    assert_eq!(deleted.expect_status(200)["count"], 2);
    alice.get(&session_path(&version, ROOM, "s1")).await.expect_error(404, "M_NOT_FOUND");
    let deleted = alice.delete(&format!("{V3}/room_keys/keys/{}?version={v}", enc(ROOM)), json!({})).await;
    assert_eq!(deleted.expect_status(200)["count"], 1);
    let deleted = alice.delete(&format!("{V3}/room_keys/keys?version={v}"), json!({})).await;
    assert_eq!(deleted.expect_status(200)["count"], 0);

    alice.get(&format!("{V3}/room_keys/keys?version=12345")).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(key_6_versions_are_updated_and_deleted, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let first = create_version(&alice, "Zmlyc3Q").await;
    let second = create_version(&alice, "c2Vjb25k").await;
    let path = format!("{V3}/room_keys/version/{}", enc(&second));

    alice.put(&path, version_body("dXBkYXRlZA")).await.expect_status(200);
    let info = alice.get(&path).await.expect_status(200).clone();
    assert_eq!(info["auth_data"]["public_key"], "dXBkYXRlZA");
    let other_algorithm = json!({ "algorithm": "org.example.other", "auth_data": {} });
    alice.put(&path, other_algorithm).await.expect_error(400, "M_INVALID_PARAM");
    let mut wrong_version = version_body("eA");
    wrong_version["version"] = json!(first);
    alice.put(&path, wrong_version).await.expect_error(400, "M_INVALID_PARAM");

    put_session(&alice, &second, "s1", session_key(false, 0, 0, "x")).await.expect_status(200);
    alice.delete(&path, json!({})).await.expect_status(200);
    alice.get(&path).await.expect_error(404, "M_NOT_FOUND");
    alice.delete(&path, json!({})).await.expect_status(200);
    alice.delete(&format!("{V3}/room_keys/version/987654"), json!({})).await.expect_error(404, "M_NOT_FOUND");
    alice
        .get(&format!("{V3}/room_keys/keys?version={}", enc(&second)))
        .await
        .expect_error(404, "M_NOT_FOUND");

    let current = alice.get(&format!("{V3}/room_keys/version")).await.expect_status(200).clone();
    assert_eq!(current["version"], first.as_str(), "the older version is current again");
    let refused = put_session(&alice, &second, "s1", session_key(false, 0, 0, "x")).await;
    refused.expect_error(403, "M_WRONG_ROOM_KEYS_VERSION");
});
