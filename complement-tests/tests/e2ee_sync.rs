//! The E2EE key counts of `/sync` (`device_one_time_keys_count`,
//! `device_unused_fallback_key_types`) are in every response, including one with nothing new:
//! matrix-nio, a real E2EE client (`docs/nio_e2ee_check.py`), rejects a whole sync response whose
//! key counts are null.

use hearth_complement_tests::{
    TestServer,
    client::{Client, password_login},
    rooms::next_batch,
    scenario,
};
use serde_json::{Value, json};

/// Keys for `/keys/upload`: one-time keys with these IDs, and a fallback key if named.
fn keys(client: &Client, one_time: &[&str], fallback: Option<&str>) -> Value {
    let (user, device) = (client.me(), client.device_id.clone().expect("device"));
    let signed = |id: &str| {
        let key = format!("{id:A<43}");
        json!({ "key": key, "signatures": { user: { format!("ed25519:{device}"): "c2ln" } } })
    };
    let mut body = json!({ "one_time_keys": {} });
    for id in one_time {
        body["one_time_keys"][format!("signed_curve25519:{id}")] = signed(id);
    }
    if let Some(id) = fallback {
        let mut key = signed(id);
        key["fallback"] = json!(true);
        body["fallback_keys"] = json!({ format!("signed_curve25519:{id}"): key });
    }
    body
}

scenario!(a_sync_with_nothing_new_still_reports_the_device_key_counts, |backend| {
    let hs = TestServer::start(backend).await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let (user, device) = (bob.me().to_owned(), bob.device_id.clone().expect("device"));
    let signed = |key: &str, fallback: bool| {
        let mut key = json!({ "key": key, "signatures": { &user: { format!("ed25519:{device}"): "c2ln" } } });
        if fallback {
            key["fallback"] = json!(true);
        }
        key
    };
    let keys = json!({
        "one_time_keys": { "signed_curve25519:AAAA": signed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false) },
        "fallback_keys": { "signed_curve25519:BBBB": signed("BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", true) },
    });
    bob.post("/_matrix/client/v3/keys/upload", keys).await.expect_status(200);

    let counted = |sync: &Value| {
        assert_eq!(sync["device_one_time_keys_count"], json!({ "signed_curve25519": 1 }), "{sync}");
        assert_eq!(sync["device_unused_fallback_key_types"], json!(["signed_curve25519"]), "{sync}");
    };
    let initial = bob.sync(None, None, 0).await;
    counted(&initial);
    // Nothing happened since: answered at once, then after a long-poll that timed out.
    for timeout_ms in [0, 300] {
        let quiet = bob.sync(Some(&next_batch(&initial)), None, timeout_ms).await;
        assert_eq!(quiet["to_device"]["events"], json!([]), "{quiet}");
        counted(&quiet);
    }
});

scenario!(the_key_counts_follow_uploads_claims_and_a_device_taken_over, |backend| {
    let hs = TestServer::start(backend).await;
    let alice = hs.client().register("alice", "passw0rd!").await;
    let bob = hs.client().register("bob", "passw0rd!").await;
    let device = bob.device_id.clone().expect("device");
    bob.post("/_matrix/client/v3/keys/upload", keys(&bob, &["K1"], Some("FB"))).await.expect_status(200);
    let counts = async |client: &Client| {
        let sync = client.sync(None, None, 0).await;
        (sync["device_one_time_keys_count"].clone(), sync["device_unused_fallback_key_types"].clone())
    };
    let (one, none) = (json!({ "signed_curve25519": 1 }), json!({ "signed_curve25519": 0 }));
    assert_eq!(counts(&bob).await, (one, json!(["signed_curve25519"])));

    let claim = json!({ "one_time_keys": { bob.me(): { &device: "signed_curve25519" } } });
    alice.post("/_matrix/client/v3/keys/claim", claim.clone()).await.expect_status(200);
    assert_eq!(counts(&bob).await, (none.clone(), json!(["signed_curve25519"])), "the one-time key is gone");
    alice.post("/_matrix/client/v3/keys/claim", claim).await.expect_status(200);
    assert_eq!(counts(&bob).await, (none.clone(), json!([])), "the fallback key was handed out");

    bob.post("/_matrix/client/v3/keys/upload", keys(&bob, &["K2", "K3"], None)).await.expect_status(200);
    assert_eq!(counts(&bob).await.0, json!({ "signed_curve25519": 2 }));

    // Logging out deletes the device and its keys; logging in again with its ID starts afresh.
    bob.post("/_matrix/client/v3/logout", json!({})).await.expect_status(200);
    let mut login = password_login("bob", "passw0rd!");
    login["device_id"] = json!(device);
    let again = hs.client().post("/_matrix/client/v3/login", login).await.expect_status(200).clone();
    let bob = hs.client().with_token(again["access_token"].as_str().expect("token"));
    assert_eq!(counts(&bob).await, (none, json!([])), "no keys survive the old device");
});
