//! Which server software answers (spec: Server-Server API › Server implementation).

use ruma::api::federation::discovery::get_server_version::v1 as version;

use crate::{FedResult, FedRuma, Federation};

/// `GET /_matrix/federation/v1/version`: `Hearth` and its version.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1version>
pub async fn get_server_version(_: Federation, _: FedRuma<version::Request>) -> FedResult<version::Response> {
    let mut server = version::Server::new();
    server.name = Some("Hearth".to_owned());
    server.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    let mut response = version::Response::new();
    response.server = Some(server);
    Ok(response)
}
