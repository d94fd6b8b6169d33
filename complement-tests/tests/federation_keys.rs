//! FED-1 and FED-2 over the federation TLS listener, key fetching between servers and the notary
//! key API (SCENARIOS.md › Federation).

use hearth_complement_tests::{
    Cluster, FakePeer, TestServer, client::enc, fake_peer::Signing, federation::enable_federation, scenario,
};
use reqwest::Method;
use ruma::{
    CanonicalJsonObject,
    serde::Base64,
    signatures::{PublicKeyMap, PublicKeySet, Verified, verify_json},
};
use serde_json::{Value, json};

/// `server`'s verify keys as its own `/_matrix/key/v2/server` publishes them.
async fn published_keys(hs: &TestServer) -> PublicKeySet {
    let body = hs.federation_client().get("/_matrix/key/v2/server").await.expect_status(200).clone();
    body["verify_keys"]
        .as_object()
        .expect("verify_keys")
        .iter()
        .map(|(id, key)| (id.clone(), Base64::parse(key["key"].as_str().expect("key")).expect("base64")))
        .collect()
}

/// Whether `object` carries a valid signature of `server` made with `keys`.
fn signed_by(object: &Value, server: &str, keys: &PublicKeySet) -> bool {
    let mut only: CanonicalJsonObject = serde_json::from_value(object.clone()).expect("canonical JSON");
    if let Some(ruma::CanonicalJsonValue::Object(signatures)) = only.get_mut("signatures") {
        signatures.retain(|name, _| name == server);
    }
    verify_json(&PublicKeyMap::from([(server.to_owned(), keys.clone())]), &only).is_ok()
}

scenario!(fed_1_the_federation_listener_serves_the_self_signed_key_over_tls, |backend| {
    let hs = TestServer::start_with(backend, enable_federation).await;
    let body = hs.federation_client().get("/_matrix/key/v2/server").await.expect_status(200).clone();
    assert_eq!(body["server_name"], hs.server_name);
    let keys = published_keys(&hs).await;
    assert!(signed_by(&body, &hs.server_name, &keys), "self-signed: {body}");
    // The client listener still serves the same key.
    let on_client = hs.client().get("/_matrix/key/v2/server").await.expect_status(200).clone();
    assert_eq!(on_client["verify_keys"], body["verify_keys"]);
    // So does the version endpoint, unsigned.
    let version = hs.federation_client().get("/_matrix/federation/v1/version").await;
    assert_eq!(version.expect_status(200)["server"]["name"], "Hearth");
    // Unknown federation paths are Matrix errors too.
    hs.federation_client().get("/_matrix/federation/v1/nonsense").await.expect_error(404, "M_UNRECOGNIZED");
});

scenario!(fed_2_requests_without_a_valid_x_matrix_signature_are_unauthorized, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let alice = hs.client().register("alice", "password1234").await;
    alice
        .put(
            &format!("/_matrix/client/v3/profile/{}/displayname", enc(alice.me())),
            json!({"displayname": "Alice"}),
        )
        .await
        .expect_status(200);
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let path = format!("/_matrix/federation/v1/query/profile?user_id={}", enc(alice.me()));

    // A correctly signed request is answered, after Hearth fetched the peer's key.
    let ok = peer.request(&hs, Method::GET, &path, None, Signing::Valid).await;
    assert_eq!(ok.expect_status(200)["displayname"], "Alice");
    assert!(
        peer.requests().iter().any(|r| r.uri.starts_with("/_matrix/key/v2/server")),
        "the key was fetched"
    );

    for signing in [Signing::Missing, Signing::BadSignature, Signing::WrongDestination, Signing::UnknownKey] {
        let refused = peer.request(&hs, Method::GET, &path, None, signing.clone()).await;
        assert_eq!(refused.status, 401, "{signing:?}: {}", refused.body);
        assert_eq!(refused.body["errcode"], "M_UNAUTHORIZED", "{signing:?}");
    }

    // A header naming an origin whose port is not a number is refused before any key is looked up.
    let good =
        peer.authorization(&hs.server_name, &Method::GET, &path, None, Signing::Valid).expect("a header");
    let bad_port =
        good.replace(&format!("origin={}", peer.server_name), &format!("origin={}:port", peer.server_name));
    assert_ne!(bad_port, good);
    let refused = peer.request(&hs, Method::GET, &path, None, Signing::Header(bad_port)).await;
    refused.expect_error(401, "M_UNAUTHORIZED");

    // A signature over a different body does not verify either.
    let header = peer.authorization(
        &hs.server_name,
        &Method::GET,
        "/_matrix/federation/v1/query/profile?user_id=x",
        None,
        Signing::Valid,
    );
    let refused =
        peer.request(&hs, Method::GET, &path, None, Signing::Header(header.expect("a header"))).await;
    refused.expect_error(401, "M_UNAUTHORIZED");
});

scenario!(fed_2_a_signed_request_with_a_bad_body_is_a_matrix_error, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    // Signed, but the user ID does not parse.
    let bad = peer
        .request(
            &hs,
            Method::GET,
            "/_matrix/federation/v1/query/profile?user_id=nobody",
            None,
            Signing::Valid,
        )
        .await;
    bad.expect_error(400, "M_INVALID_PARAM");
    let unknown = format!("/_matrix/federation/v1/query/profile?user_id={}", enc(&hs.user_id("ghost")));
    peer.request(&hs, Method::GET, &unknown, None, Signing::Valid).await.expect_error(404, "M_NOT_FOUND");
});

scenario!(a_notary_passes_on_another_servers_keys_with_both_signatures, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    // Nothing listens on port 1 (and no DNS is asked).
    servers[0].add_federation_peer("unreachable.test", "https://127.0.0.1:1");
    let (notary, origin) = (&servers[0], &servers[1]);
    let origin_keys = published_keys(origin).await;
    let notary_keys = published_keys(notary).await;

    let one = notary.federation_client().get(&format!("/_matrix/key/v2/query/{}", origin.server_name)).await;
    let answers = one.expect_status(200)["server_keys"].as_array().expect("server_keys").clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["server_name"], origin.server_name);
    assert!(signed_by(&answers[0], &origin.server_name, &origin_keys), "origin's signature: {}", answers[0]);
    assert!(signed_by(&answers[0], &notary.server_name, &notary_keys), "notary's signature: {}", answers[0]);

    let batch = notary
        .federation_client()
        .post(
            "/_matrix/key/v2/query",
            json!({"server_keys": {origin.server_name.clone(): {}, notary.server_name.clone(): {}}}),
        )
        .await;
    let answers = batch.expect_status(200)["server_keys"].as_array().expect("server_keys").clone();
    let names: Vec<&str> = answers.iter().filter_map(|a| a["server_name"].as_str()).collect();
    assert!(
        names.contains(&origin.server_name.as_str()) && names.contains(&notary.server_name.as_str()),
        "{names:?}"
    );
    for answer in &answers {
        assert!(signed_by(answer, &notary.server_name, &notary_keys), "{answer}");
    }

    // A server nobody can reach has no keys to pass on.
    let none = notary.federation_client().get("/_matrix/key/v2/query/unreachable.test").await;
    assert_eq!(none.expect_status(200)["server_keys"], json!([]));
});

scenario!(fetched_keys_survive_a_restart_and_the_origin_going_away, |backend| {
    let mut servers = Cluster::start(backend, 2).await;
    let origin = servers.pop().expect("two servers");
    let mut notary = servers.pop().expect("two servers");
    let path = format!("/_matrix/key/v2/query/{}", origin.server_name);
    let before = notary.federation_client().get(&path).await.expect_status(200)["server_keys"].clone();
    assert_eq!(before.as_array().map(Vec::len), Some(1));
    origin.stop().await;
    notary.restart().await;
    let after = notary.federation_client().get(&path).await.expect_status(200)["server_keys"].clone();
    assert_eq!(after[0]["verify_keys"], before[0]["verify_keys"], "served from the database");
});

scenario!(keys_of_an_unreachable_server_come_from_a_trusted_notary, |backend| {
    let peer = FakePeer::start().await;
    // The notary can reach the peer; the other server only the notary.
    let mut notary = TestServer::start_with(backend.clone(), enable_federation).await;
    peer.introduce_to(&mut notary);
    let notary_name = notary.server_name.clone();
    let mut hs = TestServer::start_with(backend, |config| {
        enable_federation(config);
        config.federation.trusted_key_servers = vec![notary_name.as_str().try_into().expect("server name")];
    })
    .await;
    hs.add_federation_peer(&notary.server_name, &notary.federation_url());
    // Nothing listens on port 1 (and no DNS is asked).
    hs.add_federation_peer(&peer.server_name, "https://127.0.0.1:1");
    let bob = hs.client().register("bob", "password1234").await;
    let path = format!("/_matrix/federation/v1/query/profile?user_id={}", enc(bob.me()));

    peer.request(&hs, Method::GET, &path, None, Signing::Valid).await.expect_status(200);
    let fetches = peer.requests().iter().filter(|r| r.uri.starts_with("/_matrix/key/v2/server")).count();
    assert_eq!(fetches, 1, "only the notary asked the peer");
});

/// A message event of the peer's user in a v12-style room, unsigned.
fn peer_event(peer: &FakePeer, origin_server_ts: u64) -> CanonicalJsonObject {
    serde_json::from_value(json!({
        "room_id": "!someroom:elsewhere.test",
        "type": "m.room.message",
        "sender": format!("@alice:{}", peer.server_name),
        "content": { "msgtype": "m.text", "body": "hello" },
        "origin_server_ts": origin_server_ts,
        "depth": 3,
        "prev_events": [],
        "auth_events": [],
    }))
    .expect("canonical JSON")
}

scenario!(events_signed_by_a_remote_server_are_verified_with_its_fetched_key, |backend| {
    let mut hs = TestServer::start_with(backend, enable_federation).await;
    let peer = FakePeer::start().await;
    peer.introduce_to(&mut hs);
    let version = ruma::RoomVersionId::V11;
    let rules = version.rules().expect("known version");
    let now = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis(),
    )
    .expect("fits");
    let keys = hs.federation().keys();

    let mut event = peer_event(&peer, now);
    peer.sign_pdu(&mut event, &version);
    assert_eq!(keys.verify_event(&event, &rules).await.expect("verifies"), Verified::All);

    // Content changed after signing: the signature (over the redacted form) holds, the hash not.
    let mut edited = event.clone();
    edited.insert("content".to_owned(), serde_json::from_value(json!({"body": "forged"})).expect("content"));
    assert_eq!(keys.verify_event(&edited, &rules).await.expect("signatures hold"), Verified::Signatures);

    // A changed signed field breaks the signature.
    let mut forged = event.clone();
    forged.insert("depth".to_owned(), ruma::CanonicalJsonValue::Integer(4u32.into()));
    assert!(keys.verify_event(&forged, &rules).await.is_err(), "a forged event must not verify");

    // Signed only by a key the peer does not publish.
    let mut unsigned = peer_event(&peer, now);
    let stranger = hearth_complement_tests::fake_peer::generate_key("stranger");
    ruma::signatures::hash_and_sign_event(&peer.server_name, &stranger, &mut unsigned, &rules.redaction)
        .expect("signing");
    assert!(keys.verify_event(&unsigned, &rules).await.is_err(), "an unknown key must not verify");

    // The peer's key is valid for an hour: an event claiming a later time needs a key valid then.
    let mut future = peer_event(&peer, now + 48 * 3_600_000);
    peer.sign_pdu(&mut future, &version);
    assert!(keys.verify_event(&future, &rules).await.is_err(), "no key valid at that time");
});

scenario!(a_development_server_generates_a_self_signed_certificate, |backend| {
    let hs = TestServer::start_with(backend, |config| {
        config.federation.enabled = true;
        config.federation.listen = "127.0.0.1:0".parse().expect("an address");
        config.federation.generate_self_signed = true;
    })
    .await;
    let trusting = reqwest::Client::builder().danger_accept_invalid_certs(true).build().expect("a client");
    let keys = hearth_complement_tests::Client::with_http(&hs.federation_url(), trusting);
    let body = keys.get("/_matrix/key/v2/server").await.expect_status(200).clone();
    assert_eq!(body["server_name"], hs.server_name);
    // A client that checks certificates refuses it: it is signed by no one it trusts.
    let checking =
        reqwest::Client::new().get(format!("{}/_matrix/key/v2/server", hs.federation_url())).send().await;
    assert!(checking.is_err(), "a self-signed certificate is not trusted");
});
