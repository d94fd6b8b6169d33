//! The key API (spec: Server-Server API › Publishing Keys, Querying Keys Through Another Server):
//! our own signing key, self-signed, and the notary endpoints that pass on other servers' keys
//! with our signature added.

use std::time::Duration;

use anyhow::Context;
use axum::{Json, extract::State};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use hearth_core::{Homeserver, time::now_ms};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, ServerName,
    api::federation::discovery::{
        ServerSigningKeys, get_remote_server_keys::v2 as query_one,
        get_remote_server_keys_batch::v2 as query_batch,
    },
    serde::Raw,
    signatures::sign_json,
};
use serde_json::json;

use crate::{FedResult, Federation, ruma_wrapper::FedRuma};

/// How long other servers may cache our key before asking again.
const VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The ID of our signing key, e.g. `ed25519:a_xyz`.
pub fn own_key_id(hs: &Homeserver) -> String {
    format!("ed25519:{}", hs.signing_key().version())
}

/// Our key response: verify keys, validity, self-signature.
pub fn own_keys(hs: &Homeserver) -> anyhow::Result<CanonicalJsonObject> {
    let valid_until = now_ms() + i64::try_from(VALIDITY.as_millis()).unwrap_or(i64::MAX);
    let unsigned = json!({
        "server_name": hs.server_name(),
        "verify_keys": {
            own_key_id(hs): { "key": STANDARD_NO_PAD.encode(hs.signing_key().public_key()) }
        },
        "old_verify_keys": {},
        "valid_until_ts": valid_until,
    });
    countersigned(hs, serde_json::from_value(unsigned).context("our key response")?)
}

/// `object` with our signature added.
fn countersigned(hs: &Homeserver, mut object: CanonicalJsonObject) -> anyhow::Result<CanonicalJsonObject> {
    sign_json(hs.server_name().as_str(), hs.signing_key(), &mut object).context("signing a key response")?;
    Ok(object)
}

/// `GET /_matrix/key/v2/server` (and the deprecated `/_matrix/key/v2/server/{keyId}`): our
/// verify keys, self-signed.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixkeyv2server>
pub async fn server_keys(State(fed): State<Federation>) -> FedResult<Json<CanonicalJsonObject>> {
    Ok(Json(own_keys(fed.hs())?))
}

/// `GET /_matrix/key/v2/query/{serverName}`: a server's keys as we know them (fetched if need
/// be), with our signature.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixkeyv2queryservername>
pub async fn query(fed: Federation, req: FedRuma<query_one::Request>) -> FedResult<query_one::Response> {
    let minimum = i64::from(req.body.minimum_valid_until_ts.get());
    Ok(query_one::Response::new(notarised(&fed, &req.body.server_name, minimum).await?))
}

/// `POST /_matrix/key/v2/query`: several servers' keys as we know them, with our signature.
/// <https://spec.matrix.org/latest/server-server-api/#post_matrixkeyv2query>
pub async fn query_batch(
    fed: Federation,
    req: FedRuma<query_batch::Request>,
) -> FedResult<query_batch::Response> {
    let mut server_keys = Vec::new();
    for (server, criteria) in &req.body.server_keys {
        let minimum = criteria
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .map(|ts| i64::from(ts.get()))
            .max()
            .unwrap_or_else(now_ms);
        server_keys.extend(notarised(&fed, server, minimum).await?);
    }
    Ok(query_batch::Response::new(server_keys))
}

/// The key responses of `server` valid until at least `minimum`, each with our signature.
async fn notarised(
    fed: &Federation,
    server: &ServerName,
    minimum: i64,
) -> anyhow::Result<Vec<Raw<ServerSigningKeys>>> {
    let hs = fed.hs();
    let objects = if server == hs.server_name() {
        vec![own_keys(hs)?]
    } else {
        let mut objects = Vec::new();
        for json in fed.keys().responses_for_notary(server, minimum).await {
            let object: CanonicalJsonObject = serde_json::from_str(&json).context("a stored key response")?;
            objects.push(countersigned(hs, object)?);
        }
        objects
    };
    objects
        .into_iter()
        .map(|object| {
            let value = serde_json::to_value(CanonicalJsonValue::Object(object))?;
            Ok(Raw::new(&value)?.cast_unchecked())
        })
        .collect()
}
