//! End-to-end encryption keys (spec: Client-Server API › End-to-End Encryption › Key management
//! API): devices publish their identity, one-time and fallback keys; other devices query and
//! claim them.

use hearth_core::{
    Homeserver,
    e2ee::keys::{self, Upload},
};
use ruma::api::client::keys::{claim_keys, get_keys, upload_keys};

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
pub async fn query(hs: Homeserver, req: Ruma<get_keys::v3::Request>) -> Result<get_keys::v3::Response> {
    let queried = keys::query(&hs, &req.body.device_keys).await?;
    let mut response = get_keys::v3::Response::new();
    response.device_keys = queried.device_keys;
    response.failures = queried.failures;
    Ok(response)
}

/// `POST /_matrix/client/v3/keys/claim`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3keysclaim>
pub async fn claim(hs: Homeserver, req: Ruma<claim_keys::v3::Request>) -> Result<claim_keys::v3::Response> {
    let claimed = keys::claim(&hs, &req.body.one_time_keys).await?;
    let mut response = claim_keys::v3::Response::new(claimed.one_time_keys);
    response.failures = claimed.failures;
    Ok(response)
}
