//! End-to-end encryption helpers: a device logged in with identity keys and a one-time key
//! uploaded, signed with a real ed25519 key.

use ruma::{
    CanonicalJsonObject,
    serde::Base64,
    signatures::{Ed25519KeyPair, sign_json},
};
use serde_json::{Value, json};

use crate::{Client, TestServer};

/// `user` (already registered on `hs`) logs in as `device_id` (display name `<user>'s
/// <device_id>`) and uploads identity keys and the one-time key `signed_curve25519:AAAAAQ`
/// (`onetimeonetimeonetimeonetimeonetimeonetime1`), signed with the returned device key.
pub async fn login_with_keys(
    hs: &TestServer,
    user: &str,
    password: &str,
    device_id: &str,
) -> (Client, Ed25519KeyPair) {
    let login = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
        "device_id": device_id,
        "initial_device_display_name": format!("{user}'s {device_id}"),
    });
    let token = hs.client().post("/_matrix/client/v3/login", login).await.expect_status(200)["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let client = hs.client().with_token(&token);
    let key =
        Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), device_id.to_owned()).expect("a key pair");
    let user_id = hs.user_id(user);
    let signed = |value: Value| {
        let mut object: CanonicalJsonObject = serde_json::from_value(value).expect("canonical JSON");
        sign_json(&user_id, &key, &mut object).expect("signable");
        serde_json::to_value(object).expect("JSON")
    };
    let device_keys = signed(json!({
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{device_id}"): "curve25519curve25519curve25519curve25519abc",
            format!("ed25519:{device_id}"): Base64::<ruma::serde::base64::Standard, _>::new(key.public_key().to_vec()).encode(),
        },
    }));
    let one_time = signed(json!({ "key": "onetimeonetimeonetimeonetimeonetimeonetime1" }));
    let upload = json!({
        "device_keys": device_keys,
        "one_time_keys": { "signed_curve25519:AAAAAQ": one_time },
    });
    client.post("/_matrix/client/v3/keys/upload", upload).await.expect_status(200);
    (client, key)
}
