//! End-to-end encryption keys (spec: Client-Server API › End-to-End Encryption › Key management
//! API; Cross-signing): devices publish their identity, one-time and fallback keys; other devices
//! query and claim them; users publish cross-signing keys and signatures; clients ask whose keys
//! changed.

use hearth_core::{
    Error, Homeserver,
    e2ee::{
        cross_signing::{self, SigningKeys},
        device_lists,
        keys::{self, Upload},
        signatures,
    },
};
use hearth_federation::{Federation, user_keys};
use ruma::api::client::keys::{
    claim_keys, get_key_changes, get_keys, upload_keys, upload_signatures, upload_signing_keys,
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/keys/upload`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keysupload>
pub async fn upload(
    hs: Homeserver,
    req: Ruma<upload_keys::v3::Request>,
) -> Result<upload_keys::v3::Response> {
    let body = &req.body;
    let upload = Upload {
        device_keys: body.device_keys.as_ref(),
        one_time_keys: &body.one_time_keys,
        fallback_keys: &body.fallback_keys,
    };
    let counts = keys::upload(&hs, &req.auth, upload).await?;
    Ok(upload_keys::v3::Response::new(counts))
}

/// `POST /_matrix/client/v3/keys/query`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keysquery>
pub async fn query(fed: Federation, req: Ruma<get_keys::v3::Request>) -> Result<get_keys::v3::Response> {
    let mut queried = keys::query(fed.hs(), Some(&req.auth.user_id), &req.body.device_keys).await?;
    user_keys::query_remote(&fed, &req.body.device_keys, &mut queried).await;
    let mut response = get_keys::v3::Response::new();
    response.device_keys = queried.device_keys;
    response.master_keys = queried.master_keys;
    response.self_signing_keys = queried.self_signing_keys;
    response.user_signing_keys = queried.user_signing_keys;
    response.failures = queried.failures;
    Ok(response)
}

/// `POST /_matrix/client/v3/keys/claim`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keysclaim>
pub async fn claim(fed: Federation, req: Ruma<claim_keys::v3::Request>) -> Result<claim_keys::v3::Response> {
    let mut claimed = keys::claim(fed.hs(), &req.body.one_time_keys).await?;
    user_keys::claim_remote(&fed, &req.body.one_time_keys, &mut claimed).await;
    let mut response = claim_keys::v3::Response::new(claimed.one_time_keys);
    response.failures = claimed.failures;
    Ok(response)
}

/// `GET /_matrix/client/v3/keys/changes`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3keyschanges>
pub async fn changes(
    hs: Homeserver,
    req: Ruma<get_key_changes::v3::Request>,
) -> Result<get_key_changes::v3::Response> {
    let (changed, left) = device_lists::since(&hs, &req.auth.user_id, &req.body.from)
        .await?
        .ok_or_else(|| Error::invalid_param("Invalid from token"))?;
    Ok(get_key_changes::v3::Response::new(changed, left))
}

/// `POST /_matrix/client/v3/keys/device_signing/upload`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keysdevice_signingupload>
pub async fn upload_signing_keys(
    hs: Homeserver,
    req: Ruma<upload_signing_keys::v3::Request>,
) -> Result<upload_signing_keys::v3::Response> {
    let body = &req.body;
    let keys = SigningKeys {
        master: body.master_key.as_ref(),
        self_signing: body.self_signing_key.as_ref(),
        user_signing: body.user_signing_key.as_ref(),
    };
    cross_signing::upload(&hs, &req.auth, body.auth.as_ref(), keys).await?;
    Ok(upload_signing_keys::v3::Response::new())
}

/// `POST /_matrix/client/v3/keys/signatures/upload`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keyssignaturesupload>
pub async fn upload_signatures(
    hs: Homeserver,
    req: Ruma<upload_signatures::v3::Request>,
) -> Result<upload_signatures::v3::Response> {
    let failures = signatures::upload(&hs, &req.auth, &req.body.signed_keys).await?;
    let mut response = upload_signatures::v3::Response::new();
    response.failures = failures;
    Ok(response)
}
