//! The E2EE key counts of `/sync` (`device_one_time_keys_count`,
//! `device_unused_fallback_key_types`) are in every response, including one with nothing new:
//! matrix-nio, a real E2EE client (`docs/nio_e2ee_check.py`), rejects a whole sync response whose
//! key counts are null.

use hearth_complement_tests::{TestServer, rooms::next_batch, scenario};
use serde_json::{Value, json};

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
