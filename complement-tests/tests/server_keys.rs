//! FED-1: publishing the server's signing key (SCENARIOS.md › Federation).

use std::time::{SystemTime, UNIX_EPOCH};

use hearth_complement_tests::{TestServer, scenario};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue,
    serde::Base64,
    signatures::{PublicKeyMap, PublicKeySet, verify_json},
};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    u64::try_from(since_epoch.as_millis()).expect("milliseconds fit in u64")
}

fn canonical(value: &Value) -> CanonicalJsonObject {
    match CanonicalJsonValue::try_from(value.clone()).expect("canonical JSON") {
        CanonicalJsonValue::Object(object) => object,
        other => panic!("not an object: {other:?}"),
    }
}

/// The key map of a `/_matrix/key/v2/server` answer: its own verify keys under its own name.
fn own_keys(body: &Value) -> PublicKeyMap {
    let server_name = body["server_name"].as_str().expect("server_name").to_owned();
    let keys: PublicKeySet = body["verify_keys"]
        .as_object()
        .expect("verify_keys")
        .iter()
        .map(|(id, key)| (id.clone(), Base64::parse(key["key"].as_str().expect("key")).expect("base64 key")))
        .collect();
    PublicKeyMap::from([(server_name, keys)])
}

scenario!(fed_1_server_keys_are_self_signed_and_valid_for_a_while, |backend| {
    let hs = TestServer::start(backend).await;
    let response = hs.client().get("/_matrix/key/v2/server").await;
    let body = response.expect_status(200).clone();

    assert_eq!(body["server_name"], hs.server_name);
    let verify_keys = body["verify_keys"].as_object().expect("verify_keys");
    assert_eq!(verify_keys.len(), 1, "{body}");
    let (key_id, key) = verify_keys.iter().next().expect("one key");
    assert!(key_id.starts_with("ed25519:"), "{key_id}");
    let public_key: Base64 = Base64::parse(key["key"].as_str().expect("key")).expect("unpadded base64");
    assert_eq!(public_key.as_bytes().len(), 32, "an ed25519 public key");
    let valid_until = body["valid_until_ts"].as_u64().expect("valid_until_ts");
    assert!(valid_until > now_ms(), "valid_until_ts {valid_until} is in the future");
    assert!(body["signatures"][&hs.server_name][key_id].is_string(), "signed with {key_id}: {body}");

    verify_json(&own_keys(&body), &canonical(&body)).expect("the self-signature verifies");

    // The check above can fail: a changed field breaks the signature.
    let mut forged = body.clone();
    forged["valid_until_ts"] = json!(valid_until + 1);
    assert!(verify_json(&own_keys(&body), &canonical(&forged)).is_err(), "a forged answer must not verify");
});

scenario!(fed_1_server_keys_are_stable_and_served_by_key_id_too, |backend| {
    let hs = TestServer::start(backend).await;
    let client = hs.client();
    let first = client.get("/_matrix/key/v2/server").await.expect_status(200).clone();
    let second = client.get("/_matrix/key/v2/server").await.expect_status(200).clone();
    assert_eq!(first["verify_keys"], second["verify_keys"], "the key does not change between requests");

    let key_id = first["verify_keys"].as_object().expect("verify_keys").keys().next().expect("a key").clone();
    let by_id = client.get(&format!("/_matrix/key/v2/server/{key_id}")).await;
    let by_id = by_id.expect_status(200);
    assert_eq!(by_id["verify_keys"], first["verify_keys"]);
    verify_json(&own_keys(by_id), &canonical(by_id)).expect("the self-signature verifies");
});
