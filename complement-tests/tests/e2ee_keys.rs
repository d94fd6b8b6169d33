//! KEY-1..3: uploading, querying and claiming end-to-end encryption keys (SCENARIOS.md ›
//! End-to-end encryption). Keys are really signed with ed25519, so the tests can check that
//! signatures survive the round trip through the server.

use hearth_complement_tests::{Client, TestServer, client::password_auth, scenario};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue,
    serde::Base64,
    signatures::{Ed25519KeyPair, PublicKeyMap, PublicKeySet, sign_json, verify_json},
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const PASSWORD: &str = "sUp3rs3cret";
const UPLOAD: &str = "/_matrix/client/v3/keys/upload";
const QUERY: &str = "/_matrix/client/v3/keys/query";
const CLAIM: &str = "/_matrix/client/v3/keys/claim";

/// A logged-in device with its own ed25519 signing key, like an Olm account.
struct Device {
    client: Client,
    user_id: String,
    device_id: String,
    key: Ed25519KeyPair,
}

impl Device {
    /// Logs `user` in as `device_id`, named `name`.
    async fn login(hs: &TestServer, user: &str, device_id: &str, name: &str) -> Device {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": PASSWORD,
            "device_id": device_id,
            "initial_device_display_name": name,
        });
        let response = hs.client().post("/_matrix/client/v3/login", body).await;
        let token = response.expect_status(200)["access_token"].as_str().expect("access_token");
        let document = Ed25519KeyPair::generate();
        let key = Ed25519KeyPair::from_der(&document, device_id.to_owned()).expect("a fresh key pair");
        Device {
            client: hs.client().with_token(token),
            user_id: hs.user_id(user),
            device_id: device_id.to_owned(),
            key,
        }
    }

    fn ed25519(&self) -> String {
        base64(self.key.public_key().to_vec())
    }

    /// `object` signed by this device, as a client would upload it.
    fn sign(&self, object: Value) -> Value {
        let mut object = canonical(&object);
        sign_json(&self.user_id, &self.key, &mut object).expect("signable");
        serde_json::to_value(object).expect("JSON")
    }

    /// The device's signed identity keys (with a fresh curve25519 key).
    fn device_keys(&self) -> Value {
        let (user_id, device_id) = (&self.user_id, &self.device_id);
        self.sign(json!({
            "user_id": user_id,
            "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                format!("curve25519:{device_id}"): random_key(),
                format!("ed25519:{device_id}"): self.ed25519(),
            },
        }))
    }

    /// A signed curve25519 one-time key; a fallback key carries `fallback: true`.
    fn one_time_key(&self, fallback: bool) -> Value {
        let mut key = json!({ "key": random_key() });
        if fallback {
            key["fallback"] = json!(true);
        }
        self.sign(key)
    }

    /// Verifies this device's signature on `object` (which may carry `unsigned`).
    fn verifies(&self, object: &Value) -> bool {
        let key = Base64::parse(self.ed25519()).expect("base64");
        let keys = PublicKeySet::from([(format!("ed25519:{}", self.device_id), key)]);
        verify_json(&PublicKeyMap::from([(self.user_id.clone(), keys)]), &canonical(object)).is_ok()
    }

    async fn upload(&self, body: Value) -> Value {
        self.client.post(UPLOAD, body).await.expect_status(200).clone()
    }

    /// The device's unclaimed `signed_curve25519` count, read through an empty upload.
    async fn count(&self) -> Value {
        self.upload(json!({})).await["one_time_key_counts"]["signed_curve25519"].clone()
    }
}

fn random_key() -> String {
    base64(rand::random::<[u8; 32]>().to_vec())
}

/// Unpadded standard base64, as Matrix keys are written.
fn base64(bytes: Vec<u8>) -> String {
    let encoded: Base64 = Base64::new(bytes);
    encoded.encode()
}

fn canonical(value: &Value) -> CanonicalJsonObject {
    match CanonicalJsonValue::try_from(value.clone()).expect("canonical JSON") {
        CanonicalJsonValue::Object(object) => object,
        other => panic!("not an object: {other:?}"),
    }
}

/// `value` without its `unsigned` section.
fn signed_part(value: &Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().expect("an object").remove("unsigned");
    value
}

async fn register(hs: &TestServer, user: &str) {
    hs.client().register(user, PASSWORD).await;
}

/// Claims one `signed_curve25519` key of `device` and returns `(key ID, key)`, if any.
async fn claim_one(claimer: &Client, device: &Device) -> Option<(String, Value)> {
    let body = json!({ "one_time_keys": { &device.user_id: { &device.device_id: "signed_curve25519" } } });
    let answer = claimer.post(CLAIM, body).await.expect_status(200).clone();
    let keys = answer["one_time_keys"][&device.user_id][&device.device_id].as_object()?.clone();
    assert_eq!(keys.len(), 1, "one key per device and algorithm: {answer}");
    keys.into_iter().next()
}

scenario!(key_1_upload_counts_one_time_keys_and_accepts_identical_reuploads, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    let phone = Device::login(&hs, "alice", "PHONE", "Alice's phone").await;

    assert_eq!(phone.upload(json!({})).await, json!({ "one_time_key_counts": { "signed_curve25519": 0 } }));
    let device_keys = phone.device_keys();
    let first: Vec<Value> = (0..3).map(|_| phone.one_time_key(false)).collect();
    let body = json!({
        "device_keys": device_keys,
        "one_time_keys": {
            "signed_curve25519:AAAAAQ": first[0],
            "signed_curve25519:AAAAAg": first[1],
            "signed_curve25519:AAAAAw": first[2],
        },
    });
    assert_eq!(phone.upload(body.clone()).await["one_time_key_counts"], json!({ "signed_curve25519": 3 }));
    // Clients retry uploads whose answer they lost: the same keys again change nothing.
    assert_eq!(phone.upload(body).await["one_time_key_counts"], json!({ "signed_curve25519": 3 }));

    let more = json!({ "one_time_keys": {
        "signed_curve25519:AAAABA": phone.one_time_key(false),
        "signed_curve25519:AAAABQ": phone.one_time_key(false),
    }});
    assert_eq!(phone.upload(more).await["one_time_key_counts"]["signed_curve25519"], 5);
    let fallback = json!({ "fallback_keys": { "signed_curve25519:AAAABg": phone.one_time_key(true) } });
    assert_eq!(
        phone.upload(fallback).await["one_time_key_counts"]["signed_curve25519"],
        5,
        "fallback keys are not counted"
    );
});

scenario!(key_1_keys_naming_another_user_or_device_are_refused, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;

    let mut bobs = phone.device_keys();
    bobs["user_id"] = json!(hs.user_id("bob"));
    let response = phone.client.post(UPLOAD, json!({ "device_keys": bobs })).await;
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(
        ["M_INVALID_PARAM", "M_BAD_JSON"].contains(&response.body["errcode"].as_str().unwrap_or_default())
    );

    let mut other_device = phone.device_keys();
    other_device["device_id"] = json!("LAPTOP");
    phone
        .client
        .post(UPLOAD, json!({ "device_keys": other_device }))
        .await
        .expect_error(400, "M_INVALID_PARAM");

    let mut incomplete = phone.device_keys();
    incomplete.as_object_mut().expect("object").remove("keys");
    phone.client.post(UPLOAD, json!({ "device_keys": incomplete })).await.expect_error(400, "M_BAD_JSON");
    let mut float = phone.device_keys();
    float["extra"] = json!(1.5);
    phone.client.post(UPLOAD, json!({ "device_keys": float })).await.expect_error(400, "M_BAD_JSON");

    let query = json!({ "device_keys": { &phone.user_id: [], hs.user_id("bob"): [] } });
    let answer = phone.client.post(QUERY, query).await.expect_status(200).clone();
    assert_eq!(answer["device_keys"][&phone.user_id], json!({}), "nothing was stored: {answer}");
    assert_eq!(answer["device_keys"][hs.user_id("bob")], json!({}), "nothing was stored: {answer}");
});

scenario!(key_1_changed_identity_keys_or_key_ids_are_refused_and_nothing_is_half_stored, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    let original = phone.device_keys();
    let key = phone.one_time_key(false);
    phone
        .upload(json!({ "device_keys": original, "one_time_keys": { "signed_curve25519:AAAAAQ": key } }))
        .await;

    let changed = phone.device_keys(); // a new curve25519 key for the same device
    phone.client.post(UPLOAD, json!({ "device_keys": changed })).await.expect_error(400, "M_INVALID_PARAM");

    // One new key and one that reuses an ID with other content: the whole upload is refused.
    let conflicting = json!({ "one_time_keys": {
        "signed_curve25519:AAAAAQ": phone.one_time_key(false),
        "signed_curve25519:AAAAAg": phone.one_time_key(false),
    }});
    phone.client.post(UPLOAD, conflicting).await.expect_error(400, "M_INVALID_PARAM");
    assert_eq!(phone.count().await, 1, "the new key of the refused upload was not stored");

    let query = json!({ "device_keys": { &phone.user_id: ["PHONE"] } });
    let answer = phone.client.post(QUERY, query).await.expect_status(200).clone();
    assert_eq!(signed_part(&answer["device_keys"][&phone.user_id]["PHONE"]), original, "the first keys stay");
    let (_, claimed) = claim_one(&phone.client, &phone).await.expect("the first key");
    assert_eq!(claimed, key, "the first one-time key stays");
});

scenario!(key_2_query_returns_the_uploaded_keys_byte_for_byte_with_the_display_name, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "Alice's phone").await;
    let laptop = Device::login(&hs, "alice", "LAPTOP", "Alice's laptop").await;
    let bob = Device::login(&hs, "bob", "BOBPHONE", "phone").await;
    let phone_keys = phone.device_keys();
    let laptop_keys = laptop.device_keys();
    phone.upload(json!({ "device_keys": phone_keys })).await;
    laptop.upload(json!({ "device_keys": laptop_keys })).await;

    let all = bob.client.post(QUERY, json!({ "device_keys": { &phone.user_id: [] } })).await;
    let all = all.expect_status(200).clone();
    assert!(all["failures"].as_object().is_none_or(|f| f.is_empty()), "no failures for local users: {all}");
    let devices = all["device_keys"][&phone.user_id].as_object().expect("alice's devices").clone();
    assert_eq!(devices.keys().collect::<Vec<_>>(), ["LAPTOP", "PHONE"]);
    let mut expected = phone_keys.clone();
    expected["unsigned"] = json!({ "device_display_name": "Alice's phone" });
    assert_eq!(devices["PHONE"], expected);
    assert_eq!(signed_part(&devices["LAPTOP"]), laptop_keys);
    assert_eq!(devices["LAPTOP"]["unsigned"]["device_display_name"], "Alice's laptop");
    assert!(phone.verifies(&devices["PHONE"]), "the device's signature verifies: {}", devices["PHONE"]);
    assert!(laptop.verifies(&devices["LAPTOP"]));
    assert!(!phone.verifies(&devices["LAPTOP"]), "the check can fail");

    let one =
        bob.client.post(QUERY, json!({ "device_keys": { &phone.user_id: ["LAPTOP", "NOSUCH"] } })).await;
    let one = one.expect_status(200)["device_keys"][&phone.user_id].clone();
    assert_eq!(one.as_object().expect("map").keys().collect::<Vec<_>>(), ["LAPTOP"]);

    // A rename shows in the next query.
    let rename = json!({ "display_name": "Old phone" });
    phone.client.put("/_matrix/client/v3/devices/PHONE", rename).await.expect_status(200);
    let renamed = bob.client.post(QUERY, json!({ "device_keys": { &phone.user_id: ["PHONE"] } })).await;
    assert_eq!(
        renamed.expect_status(200)["device_keys"][&phone.user_id]["PHONE"]["unsigned"]["device_display_name"],
        "Old phone"
    );
});

scenario!(key_2_users_without_keys_get_empty_maps_and_malformed_queries_are_refused, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    Device::login(&hs, "bob", "BOBPHONE", "phone").await; // a device without keys

    let query = json!({ "device_keys": {
        hs.user_id("bob"): [],
        hs.user_id("nosuchuser"): [],
        "@carol:elsewhere.example": [],
    }});
    let answer = phone.client.post(QUERY, query).await.expect_status(200).clone();
    let empty_or_absent =
        |user: &str| answer["device_keys"][user].is_null() || answer["device_keys"][user] == json!({});
    assert!(empty_or_absent(&hs.user_id("bob")), "{answer}");
    assert!(empty_or_absent(&hs.user_id("nosuchuser")), "{answer}");
    assert!(answer["device_keys"]["@carol:elsewhere.example"].is_null(), "{answer}");
    assert!(answer["failures"]["elsewhere.example"].is_object(), "the unreachable server is named: {answer}");

    let object = json!({ "device_keys": { hs.user_id("bob"): { "BOBPHONE": true } } });
    phone.client.post(QUERY, object).await.expect_error(400, "M_BAD_JSON");
    phone.client.post(QUERY, json!({})).await.expect_error(400, "M_BAD_JSON");
});

scenario!(key_3_claims_hand_out_each_one_time_key_once_in_upload_order_then_the_fallback, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    let bob = Device::login(&hs, "bob", "BOBPHONE", "phone").await;

    // Upload order differs from key ID order, so a server that sorts by ID fails.
    let batches = ["ZZZZ01", "AAAA02", "MMMM03"]
        .map(|id| (format!("signed_curve25519:{id}"), phone.one_time_key(false)));
    for (id, key) in &batches {
        phone.upload(json!({ "one_time_keys": { id: key } })).await;
    }
    let fallback = phone.one_time_key(true);
    phone.upload(json!({ "fallback_keys": { "signed_curve25519:FALL01": fallback } })).await;
    assert_eq!(phone.count().await, 3);

    for (n, (id, key)) in batches.iter().enumerate() {
        let (claimed_id, claimed) = claim_one(&bob.client, &phone).await.expect("a one-time key is left");
        assert_eq!((&claimed_id, &claimed), (id, key), "claim {n} gets the oldest key, unchanged");
        assert!(phone.verifies(&claimed));
        assert_eq!(phone.count().await, 2 - n, "the claimed key is gone");
    }

    // Exhausted: the fallback key, again and again, until the device replaces it.
    for _ in 0..2 {
        let (id, key) = claim_one(&bob.client, &phone).await.expect("the fallback key");
        assert_eq!((id.as_str(), &key), ("signed_curve25519:FALL01", &fallback));
    }
    assert_eq!(phone.count().await, 0);
    let newer = phone.one_time_key(true);
    phone.upload(json!({ "fallback_keys": { "signed_curve25519:FALL02": newer } })).await;
    let (id, key) = claim_one(&bob.client, &phone).await.expect("the new fallback key");
    assert_eq!((id.as_str(), &key), ("signed_curve25519:FALL02", &newer));

    // A device with no keys at all is left out; so are devices that do not exist.
    let none = json!({ "one_time_keys": {
        &bob.user_id: { "BOBPHONE": "signed_curve25519" },
        &phone.user_id: { "NOSUCH": "signed_curve25519" },
    }});
    let answer = phone.client.post(CLAIM, none).await.expect_status(200).clone();
    assert_eq!(answer["one_time_keys"], json!({}), "{answer}");
    let remote = json!({ "one_time_keys": { "@carol:elsewhere.example": { "X": "signed_curve25519" } } });
    let answer = phone.client.post(CLAIM, remote).await.expect_status(200).clone();
    assert!(answer["failures"]["elsewhere.example"].is_object(), "{answer}");
});

scenario!(key_3_concurrent_claims_never_get_the_same_key, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    let bob = Device::login(&hs, "bob", "BOBPHONE", "phone").await;
    let keys: serde_json::Map<String, Value> =
        (0..8).map(|n| (format!("signed_curve25519:K{n}"), phone.one_time_key(false))).collect();
    phone.upload(json!({ "one_time_keys": keys })).await;

    let body = json!({ "one_time_keys": { &phone.user_id: { "PHONE": "signed_curve25519" } } });
    let mut claims = JoinSet::new();
    for _ in 0..10 {
        let (client, body) = (bob.client.clone(), body.clone());
        claims.spawn(async move { client.post(CLAIM, body).await.expect_status(200).clone() });
    }
    let mut handed_out = Vec::new();
    while let Some(answer) = claims.join_next().await {
        let answer = answer.expect("the claim task");
        if let Some(keys) = answer["one_time_keys"][&phone.user_id]["PHONE"].as_object() {
            handed_out.extend(keys.keys().cloned());
        }
    }
    handed_out.sort();
    let mut expected: Vec<String> = keys.keys().cloned().collect();
    expected.sort();
    assert_eq!(handed_out, expected, "each of the 8 keys exactly once; 2 claims get none");
    assert_eq!(phone.count().await, 0);
});

scenario!(key_3_deleting_or_logging_out_a_device_deletes_its_keys, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    let laptop = Device::login(&hs, "alice", "LAPTOP", "laptop").await;
    for device in [&phone, &laptop] {
        device
            .upload(json!({
                "device_keys": device.device_keys(),
                "one_time_keys": { "signed_curve25519:AAAAAQ": device.one_time_key(false) },
                "fallback_keys": { "signed_curve25519:AAAAAg": device.one_time_key(true) },
            }))
            .await;
    }
    let user = phone.user_id.clone();

    let challenge = phone.client.delete("/_matrix/client/v3/devices/LAPTOP", json!({})).await;
    let session = challenge.expect_status(401)["session"].as_str().expect("session").to_owned();
    let auth = json!({ "auth": password_auth("alice", PASSWORD, Some(&session)) });
    phone.client.delete("/_matrix/client/v3/devices/LAPTOP", auth).await.expect_status(200);

    let answer = phone.client.post(QUERY, json!({ "device_keys": { &user: [] } })).await;
    let devices = answer.expect_status(200)["device_keys"][&user].clone();
    assert_eq!(devices.as_object().expect("map").keys().collect::<Vec<_>>(), ["PHONE"]);
    assert!(claim_one(&phone.client, &laptop).await.is_none(), "neither one-time nor fallback keys are left");

    // Logging out deletes the device too; logging in again as PHONE starts without keys.
    phone.client.post("/_matrix/client/v3/logout", json!({})).await.expect_status(200);
    let again = Device::login(&hs, "alice", "PHONE", "phone").await;
    assert!(claim_one(&again.client, &phone).await.is_none());
    let answer = again.client.post(QUERY, json!({ "device_keys": { &user: [] } })).await;
    assert_eq!(answer.expect_status(200)["device_keys"][&user], json!({}));
    assert_eq!(again.count().await, 0);
    again.upload(json!({ "device_keys": again.device_keys() })).await; // new keys are welcome now
});

scenario!(key_3_deactivating_an_account_deletes_the_keys_of_all_its_devices, |backend| {
    let hs = TestServer::start(backend).await;
    register(&hs, "alice").await;
    register(&hs, "bob").await;
    let phone = Device::login(&hs, "alice", "PHONE", "phone").await;
    let bob = Device::login(&hs, "bob", "BOBPHONE", "phone").await;
    phone
        .upload(json!({
            "device_keys": phone.device_keys(),
            "one_time_keys": { "signed_curve25519:AAAAAQ": phone.one_time_key(false) },
            "fallback_keys": { "signed_curve25519:AAAAAg": phone.one_time_key(true) },
        }))
        .await;

    let path = "/_matrix/client/v3/account/deactivate";
    let auth = json!({ "auth": password_auth("alice", PASSWORD, None) });
    phone.client.post(path, auth).await.expect_status(200);

    let answer = bob.client.post(QUERY, json!({ "device_keys": { &phone.user_id: [] } })).await;
    assert_eq!(answer.expect_status(200)["device_keys"][&phone.user_id], json!({}));
    assert!(claim_one(&bob.client, &phone).await.is_none());
});
