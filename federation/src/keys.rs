//! Publishing our signing key (spec: Server-Server API › Publishing Keys).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use hearth_core::{Homeserver, time::now_ms};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, signatures::sign_json};
use serde_json::{Value, json};

/// How long other servers may cache our key before asking again.
const VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// `GET /_matrix/key/v2/server`: our verify keys, self-signed.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixkeyv2server>
pub async fn server_keys(State(hs): State<Homeserver>) -> Result<Json<Value>, StatusCode> {
    let key = hs.signing_key();
    let valid_until = now_ms() + i64::try_from(VALIDITY.as_millis()).unwrap_or(i64::MAX);
    let unsigned = json!({
        "server_name": hs.server_name(),
        "verify_keys": {
            format!("ed25519:{}", key.version()): { "key": STANDARD_NO_PAD.encode(key.public_key()) }
        },
        "old_verify_keys": {},
        "valid_until_ts": valid_until,
    });
    let signed = sign(&hs, unsigned).map_err(|e| {
        tracing::error!(error = %e, "signing server keys");
        StatusCode::INTERNAL_SERVER_ERROR
    })?;
    Ok(Json(signed))
}

fn sign(hs: &Homeserver, value: Value) -> Result<Value, Box<dyn std::error::Error>> {
    let mut object: CanonicalJsonObject = match CanonicalJsonValue::try_from(value)? {
        CanonicalJsonValue::Object(object) => object,
        _ => return Err("server key response is not an object".into()),
    };
    sign_json(hs.server_name().as_str(), hs.signing_key(), &mut object)?;
    Ok(serde_json::to_value(object)?)
}
