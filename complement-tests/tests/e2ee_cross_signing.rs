//! Cross-signing (spec: Client-Server API › End-to-End Encryption › Cross-signing): uploading
//! master, self-signing and user-signing keys, uploading signatures, and reading both back from
//! `/keys/query` as each user may see them. Keys and signatures are real ed25519.

use hearth_complement_tests::{Client, TestServer, client::password_auth, scenario};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue,
    serde::Base64,
    signatures::{Ed25519KeyPair, sign_json},
};
use serde_json::{Value, json};

const V3: &str = "/_matrix/client/v3";
const PASSWORD: &str = "passw0rd!";

/// An ed25519 key pair whose key ID is `ed25519:<public key>`, as cross-signing keys are named
/// (or `ed25519:<device ID>` for a device's key).
struct Key {
    pair: Ed25519KeyPair,
    public: String,
}

impl Key {
    fn cross_signing() -> Key {
        let document = Ed25519KeyPair::generate();
        let probe = Ed25519KeyPair::from_der(&document, String::new()).expect("a fresh key pair");
        let public: Base64 = Base64::new(probe.public_key().to_vec());
        let public = public.encode();
        Key { pair: Ed25519KeyPair::from_der(&document, public.clone()).expect("key pair"), public }
    }

    fn device(device_id: &str) -> Key {
        let document = Ed25519KeyPair::generate();
        let pair = Ed25519KeyPair::from_der(&document, device_id.to_owned()).expect("a fresh key pair");
        let public: Base64 = Base64::new(pair.public_key().to_vec());
        Key { public: public.encode(), pair }
    }

    /// `object` with this key's signature added, as `user`'s.
    fn sign(&self, user: &str, object: &Value) -> Value {
        let mut object = canonical(object);
        sign_json(user, &self.pair, &mut object).expect("signable");
        serde_json::to_value(object).expect("JSON")
    }
}

fn canonical(value: &Value) -> CanonicalJsonObject {
    match CanonicalJsonValue::try_from(value.clone()).expect("canonical JSON") {
        CanonicalJsonValue::Object(object) => object,
        other => panic!("not an object: {other:?}"),
    }
}

/// A user's three cross-signing keys.
struct CrossSigning {
    master: Key,
    self_signing: Key,
    user_signing: Key,
}

impl CrossSigning {
    fn new() -> CrossSigning {
        CrossSigning {
            master: Key::cross_signing(),
            self_signing: Key::cross_signing(),
            user_signing: Key::cross_signing(),
        }
    }

    /// The upload body: the master key, and both subkeys signed by it.
    fn upload_body(&self, user: &str) -> Value {
        json!({
            "master_key": public_key(user, "master", &self.master),
            "self_signing_key": self.master.sign(user, &public_key(user, "self_signing", &self.self_signing)),
            "user_signing_key": self.master.sign(user, &public_key(user, "user_signing", &self.user_signing)),
        })
    }
}

/// The unsigned public form of a cross-signing key.
fn public_key(user: &str, usage: &str, key: &Key) -> Value {
    json!({ "user_id": user, "usage": [usage], "keys": { format!("ed25519:{}", key.public): key.public } })
}

async fn upload_signing_keys(client: &Client, body: Value) -> hearth_complement_tests::Response {
    client.post(&format!("{V3}/keys/device_signing/upload"), body).await
}

async fn query(client: &Client, users: &[&str]) -> Value {
    let wanted: serde_json::Map<String, Value> = users.iter().map(|u| ((*u).to_owned(), json!([]))).collect();
    client
        .post(&format!("{V3}/keys/query"), json!({ "device_keys": wanted }))
        .await
        .expect_status(200)
        .clone()
}

async fn upload_signatures(client: &Client, body: Value) -> Value {
    client.post(&format!("{V3}/keys/signatures/upload"), body).await.expect_status(200).clone()
}

/// Uploads signed identity keys for the client's device; returns them and the device's key.
async fn upload_device_keys(client: &Client) -> (Value, Key) {
    let device_id = client.device_id.clone().expect("a device");
    let key = Key::device(&device_id);
    let keys = key.sign(
        client.me(),
        &json!({
            "user_id": client.me(),
            "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                format!("curve25519:{device_id}"): "Y3VydmUyNTUxOSBrZXkgb2YgdGhlIGRldmljZQ",
                format!("ed25519:{device_id}"): key.public,
            },
        }),
    );
    client.post(&format!("{V3}/keys/upload"), json!({ "device_keys": keys })).await.expect_status(200);
    (keys, key)
}

fn no_failures(answer: &Value) -> bool {
    answer.get("failures").is_none_or(|f| f.as_object().is_some_and(|f| f.is_empty()))
}

scenario!(cross_signing_keys_are_uploaded_once_without_uia_and_shown_as_the_spec_allows, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let keys = CrossSigning::new();
    let body = keys.upload_body(alice.me());

    upload_signing_keys(&alice, body.clone()).await.expect_status(200);
    // A retry of the same upload (its answer lost) needs no authentication either.
    upload_signing_keys(&alice, body.clone()).await.expect_status(200);

    let own = query(&alice, &[alice.me()]).await;
    assert_eq!(own["master_keys"][alice.me()], body["master_key"]);
    assert_eq!(own["self_signing_keys"][alice.me()], body["self_signing_key"]);
    assert_eq!(
        own["user_signing_keys"][alice.me()],
        body["user_signing_key"],
        "alice sees her own user-signing key"
    );

    let theirs = query(&bob, &[alice.me(), bob.me()]).await;
    assert_eq!(theirs["master_keys"][alice.me()], body["master_key"]);
    assert_eq!(theirs["self_signing_keys"][alice.me()], body["self_signing_key"]);
    assert!(
        theirs["user_signing_keys"].get(alice.me()).is_none(),
        "only its owner sees a user-signing key: {theirs}"
    );
    assert!(theirs["master_keys"].get(bob.me()).is_none(), "bob has none");
});

scenario!(replacing_cross_signing_keys_needs_the_password, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    upload_signing_keys(&alice, CrossSigning::new().upload_body(alice.me())).await.expect_status(200);

    let mut body = CrossSigning::new().upload_body(alice.me());
    let challenge = upload_signing_keys(&alice, body.clone()).await;
    let challenge = challenge.expect_status(401);
    assert_eq!(challenge["flows"][0]["stages"], json!(["m.login.password"]));
    let session = challenge["session"].as_str().expect("session");

    body["auth"] = password_auth("alice", "wrong password", Some(session));
    assert_eq!(upload_signing_keys(&alice, body.clone()).await.status, 401, "a wrong password does not do");
    let mut stored = query(&alice, &[alice.me()]).await;
    assert_ne!(stored["master_keys"][alice.me()], body["master_key"]);

    body["auth"] = password_auth("alice", PASSWORD, Some(session));
    upload_signing_keys(&alice, body.clone()).await.expect_status(200);
    stored = query(&alice, &[alice.me()]).await;
    assert_eq!(stored["master_keys"][alice.me()], body["master_key"], "the new master key replaced the old");
});

scenario!(subkeys_must_be_signed_by_the_master_key, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let me = alice.me();
    let keys = CrossSigning::new();
    let impostor = Key::cross_signing();

    let unsigned_only = json!({ "self_signing_key": public_key(me, "self_signing", &keys.self_signing) });
    upload_signing_keys(&alice, unsigned_only).await.expect_error(400, "M_MISSING_PARAM");

    let badly_signed = json!({
        "master_key": public_key(me, "master", &keys.master),
        "self_signing_key": impostor.sign(me, &public_key(me, "self_signing", &keys.self_signing)),
    });
    upload_signing_keys(&alice, badly_signed).await.expect_error(400, "M_INVALID_SIGNATURE");
    assert!(
        query(&alice, &[me]).await.get("master_keys").is_none_or(|m| m.get(me).is_none()),
        "nothing stored"
    );

    let wrong_usage = json!({ "master_key": public_key(me, "self_signing", &keys.master) });
    assert_eq!(upload_signing_keys(&alice, wrong_usage).await.status, 400);
});

scenario!(signatures_are_verified_stored_and_shown_to_whom_they_concern, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let bob = hs.client().register("bob", PASSWORD).await;
    let carol = hs.client().register("carol", PASSWORD).await;
    let (alices, bobs) = (CrossSigning::new(), CrossSigning::new());
    upload_signing_keys(&alice, alices.upload_body(alice.me())).await.expect_status(200);
    upload_signing_keys(&bob, bobs.upload_body(bob.me())).await.expect_status(200);
    let (device_keys, device_key) = upload_device_keys(&alice).await;
    let device_id = alice.device_id.clone().expect("device");
    let ssk_id = format!("ed25519:{}", alices.self_signing.public);
    let usk_id = format!("ed25519:{}", alices.user_signing.public);

    // Alice's self-signing key signs her device; the device signs her master key.
    let signed_device = alices.self_signing.sign(alice.me(), &device_keys);
    let signed_master = device_key.sign(alice.me(), &public_key(alice.me(), "master", &alices.master));
    let answer = upload_signatures(
        &alice,
        json!({ alice.me(): { &device_id: signed_device, &alices.master.public: signed_master } }),
    )
    .await;
    assert!(no_failures(&answer), "{answer}");
    // Her user-signing key signs bob's master key.
    let bobs_master = alices.user_signing.sign(alice.me(), &public_key(bob.me(), "master", &bobs.master));
    let answer = upload_signatures(&alice, json!({ bob.me(): { &bobs.master.public: bobs_master } })).await;
    assert!(no_failures(&answer), "{answer}");

    let seen_by_carol = query(&carol, &[alice.me(), bob.me()]).await;
    let device = &seen_by_carol["device_keys"][alice.me()][&device_id];
    assert_eq!(
        device["signatures"][alice.me()][&ssk_id],
        signed_device_signature(&alices, alice.me(), &device_keys)
    );
    assert!(
        device["signatures"][alice.me()][format!("ed25519:{device_id}")].is_string(),
        "the device's own stays"
    );
    let master = &seen_by_carol["master_keys"][alice.me()];
    assert!(master["signatures"][alice.me()][format!("ed25519:{device_id}")].is_string(), "{master}");
    let bobs_seen_by_carol = &seen_by_carol["master_keys"][bob.me()];
    assert!(
        bobs_seen_by_carol["signatures"].get(alice.me()).is_none(),
        "alice's user-signing signature is hers alone"
    );
    let seen_by_alice = query(&alice, &[bob.me()]).await;
    assert!(
        seen_by_alice["master_keys"][bob.me()]["signatures"][alice.me()][&usk_id].is_string(),
        "{seen_by_alice}"
    );
});

scenario!(bad_or_mismatched_signatures_are_reported_per_key, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", PASSWORD).await;
    let keys = CrossSigning::new();
    upload_signing_keys(&alice, keys.upload_body(alice.me())).await.expect_status(200);
    let (device_keys, _) = upload_device_keys(&alice).await;
    let device_id = alice.device_id.clone().expect("device");
    let ssk_id = format!("ed25519:{}", keys.self_signing.public);

    let mut forged = device_keys.clone();
    forged["signatures"][alice.me()][&ssk_id] = json!("AAAA".repeat(21) + "AA");
    let mut altered = keys.self_signing.sign(alice.me(), &device_keys);
    altered["algorithms"] = json!(["m.megolm.v1.aes-sha2"]);
    let answer =
        upload_signatures(&alice, json!({ alice.me(): { &device_id: forged, "NOSUCHDEVICE": altered } }))
            .await;
    assert_eq!(answer["failures"][alice.me()][&device_id]["errcode"], "M_INVALID_SIGNATURE", "{answer}");
    assert!(answer["failures"][alice.me()]["NOSUCHDEVICE"]["errcode"].is_string(), "{answer}");

    let mut resigned = altered.clone();
    resigned.as_object_mut().expect("object").remove("signatures");
    let resigned = keys.self_signing.sign(alice.me(), &resigned);
    let answer = upload_signatures(&alice, json!({ alice.me(): { &device_id: resigned } })).await;
    assert_eq!(
        answer["failures"][alice.me()][&device_id]["errcode"],
        "M_INVALID_SIGNATURE",
        "a validly signed object that is not the stored key: {answer}"
    );

    let stored = query(&alice, &[alice.me()]).await;
    assert!(stored["device_keys"][alice.me()][&device_id]["signatures"][alice.me()].get(&ssk_id).is_none());
});

/// The signature `keys`' self-signing key makes over `device_keys`.
fn signed_device_signature(keys: &CrossSigning, user: &str, device_keys: &Value) -> Value {
    keys.self_signing.sign(user, device_keys)["signatures"][user]
        [format!("ed25519:{}", keys.self_signing.public)]
    .clone()
}
