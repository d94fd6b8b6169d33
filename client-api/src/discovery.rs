//! Server discovery and feature advertisement: `/versions`, `/.well-known/matrix/client`,
//! `/capabilities` (spec: Client-Server API › Server Discovery, Capabilities negotiation).

use std::collections::BTreeMap;

use axum::Json;
use hearth_core::{Error, Homeserver};
use ruma::api::client::discovery::{
    discover_homeserver::{self, HomeserverInfo},
    get_capabilities::{
        self,
        v3::{
            Capabilities, ChangePasswordCapability, RoomVersionStability, RoomVersionsCapability,
            ThirdPartyIdChangesCapability,
        },
    },
    get_supported_versions,
};

use serde_json::{Value, json};

use crate::{error::Result, ruma_wrapper::Ruma};

/// Spec versions whose endpoints Hearth serves. Clients switch to authenticated media from
/// v1.11 on, so versions are only added once what they require is served.
const VERSIONS: &[&str] = &["r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5"];

pub use hearth_core::rooms::head::ROOM_VERSIONS;

/// `GET /_matrix/client/versions`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientversions>
pub async fn versions(
    _hs: Homeserver,
    _req: Ruma<get_supported_versions::Request>,
) -> Result<get_supported_versions::Response> {
    let mut response =
        get_supported_versions::Response::new(VERSIONS.iter().map(|v| (*v).to_owned()).collect());
    response.unstable_features = BTreeMap::new();
    Ok(response)
}

/// `GET /.well-known/matrix/client`
/// <https://spec.matrix.org/latest/client-server-api/#getwell-knownmatrixclient>
pub async fn well_known_client(
    hs: Homeserver,
    _req: Ruma<discover_homeserver::Request>,
) -> Result<discover_homeserver::Response> {
    Ok(discover_homeserver::Response::new(HomeserverInfo::new(hs.config().public_baseurl.clone())))
}

/// `GET /_matrix/client/v3/capabilities`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3capabilities>
///
/// Served as plain JSON: ruma leaves out capabilities that equal their spec default, but
/// clients and test suites look for `m.change_password` explicitly.
pub async fn capabilities(hs: Homeserver, _req: Ruma<get_capabilities::v3::Request>) -> Result<Json<Value>> {
    let available = ROOM_VERSIONS.iter().map(|v| (v.clone(), RoomVersionStability::Stable)).collect();
    let mut capabilities = Capabilities::new();
    capabilities.room_versions =
        RoomVersionsCapability::new(hs.config().rooms.default_version.clone(), available);
    // Hearth has no third-party identifiers to add or remove.
    capabilities.thirdparty_id_changes = ThirdPartyIdChangesCapability::new(false);
    let mut capabilities =
        serde_json::to_value(&capabilities).map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
    capabilities["m.change_password"] = json!(ChangePasswordCapability::new(true));
    Ok(Json(json!({ "capabilities": capabilities })))
}
