//! End-to-end encryption keys across servers (spec: Server-Server API › End-to-End Encryption):
//! answering other servers' `/user/keys/query` and `/user/keys/claim` for our users, and asking
//! other servers for theirs on behalf of our clients.

use std::{collections::BTreeMap, future::Future, time::Duration};

use hearth_core::e2ee::keys::{self, ClaimedKeys, QueriedKeys};
use ruma::{
    OneTimeKeyAlgorithm, OwnedDeviceId, OwnedServerName, OwnedUserId, ServerName,
    api::federation::keys::{claim_keys::v1 as claim_keys, get_keys::v1 as get_keys},
};
use serde_json::{Value, json};

use crate::{FedError, FedResult, FedRuma, Federation};

/// How long a client's key query or claim waits for other servers.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /_matrix/federation/v1/user/keys/query`: our users' device and cross-signing keys.
/// <https://spec.matrix.org/latest/server-server-api/#post_matrixfederationv1userkeysquery>
pub async fn query(fed: Federation, req: FedRuma<get_keys::Request>) -> FedResult<get_keys::Response> {
    let local = ours(&fed, req.body.device_keys);
    let queried = keys::query(fed.hs(), None, &local).await?;
    let mut response = get_keys::Response::new(queried.device_keys);
    response.master_keys = queried.master_keys;
    response.self_signing_keys = queried.self_signing_keys;
    Ok(response)
}

/// `POST /_matrix/federation/v1/user/keys/claim`: one-time (or fallback) keys of our users'
/// devices.
/// <https://spec.matrix.org/latest/server-server-api/#post_matrixfederationv1userkeysclaim>
pub async fn claim(fed: Federation, req: FedRuma<claim_keys::Request>) -> FedResult<claim_keys::Response> {
    let local = ours(&fed, req.body.one_time_keys);
    Ok(claim_keys::Response::new(keys::claim(fed.hs(), &local).await?.one_time_keys))
}

/// The entries of `requested` about our own users.
fn ours<T>(fed: &Federation, requested: BTreeMap<OwnedUserId, T>) -> BTreeMap<OwnedUserId, T> {
    requested.into_iter().filter(|(user, _)| user.server_name() == fed.hs().server_name()).collect()
}

/// Asks each other server named in `requested` for its users' keys and merges the answers into
/// `answer` (a server that answered leaves `failures`; one that did not stays there, with why).
pub async fn query_remote(
    fed: &Federation,
    requested: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
    answer: &mut QueriedKeys,
) {
    let answers = ask_each(fed, requested, |server, users| async move {
        fed.client().send(&server, get_keys::Request::new(users)).await
    })
    .await;
    for (server, result) in answers {
        match result {
            Ok(found) => {
                answer.failures.remove(server.as_str());
                let theirs = |user: &OwnedUserId| user.server_name() == server;
                answer.device_keys.extend(found.device_keys.into_iter().filter(|(u, _)| theirs(u)));
                answer.master_keys.extend(found.master_keys.into_iter().filter(|(u, _)| theirs(u)));
                answer
                    .self_signing_keys
                    .extend(found.self_signing_keys.into_iter().filter(|(u, _)| theirs(u)));
            }
            Err(failure) => {
                answer.failures.insert(server.to_string(), failure);
            }
        }
    }
}

/// Claims one-time keys of other servers' devices named in `requested` and merges them into
/// `answer`, as [`query_remote`] does.
pub async fn claim_remote(
    fed: &Federation,
    requested: &BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>,
    answer: &mut ClaimedKeys,
) {
    let answers = ask_each(fed, requested, |server, users| async move {
        fed.client().send(&server, claim_keys::Request::new(users)).await
    })
    .await;
    for (server, result) in answers {
        match result {
            Ok(found) => {
                answer.failures.remove(server.as_str());
                let theirs = found.one_time_keys.into_iter().filter(|(u, _)| u.server_name() == server);
                answer.one_time_keys.extend(theirs);
            }
            Err(failure) => {
                answer.failures.insert(server.to_string(), failure);
            }
        }
    }
}

/// Sends `ask(server, its users' part of requested)` to every other server named in
/// `requested`, all at once, each with a deadline; a failure is the `failures` entry to report.
async fn ask_each<T, R, Fut>(
    fed: &Federation,
    requested: &BTreeMap<OwnedUserId, T>,
    ask: impl Fn(OwnedServerName, BTreeMap<OwnedUserId, T>) -> Fut,
) -> Vec<(OwnedServerName, Result<R, Value>)>
where
    T: Clone,
    Fut: Future<Output = Result<R, FedError>>,
{
    let mut by_server: BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, T>> = BTreeMap::new();
    for (user, wanted) in requested {
        if user.server_name() != fed.hs().server_name() {
            by_server.entry(user.server_name().to_owned()).or_default().insert(user.clone(), wanted.clone());
        }
    }
    let asks = by_server.into_iter().map(|(server, users)| {
        let asked = ask(server.clone(), users);
        async move {
            let result = match tokio::time::timeout(REMOTE_TIMEOUT, asked).await {
                Ok(Ok(found)) => Ok(found),
                Ok(Err(e)) => Err(failure(&server, &e.to_string())),
                Err(_) => Err(failure(&server, "timed out")),
            };
            (server, result)
        }
    });
    futures::future::join_all(asks).await
}

fn failure(server: &ServerName, message: &str) -> Value {
    tracing::debug!(%server, %message, "remote key request failed");
    json!({ "status": 503, "message": message })
}
