//! A fake federation peer: a server name and ed25519 key of its own, a TLS listener (certificate
//! from the test CA) that serves its key and records every other request Hearth sends it, with
//! scriptable answers. It signs requests to Hearth with X-Matrix (or deliberately fails to) and
//! signs PDUs, so tests can play a remote server that is honest, forgetful or forging.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, body::Bytes, extract::State, http::StatusCode, response::IntoResponse};
use hearth::Config;
use hearth_federation::listener::TlsListener;
use rand::{Rng, distributions::Alphanumeric};
use reqwest::Method;
use ruma::{
    CanonicalJsonObject, OwnedServerName, RoomVersionId,
    api::federation::authentication::{XMatrix, XMatrixSigningInput},
    serde::Base64,
    signatures::Ed25519KeyPair,
};
use serde_json::{Value, json};

use crate::{Response, TestServer, client::eventually, federation::test_ca};

/// How a request to Hearth is signed.
#[derive(Clone, Debug)]
pub enum Signing {
    /// A correct X-Matrix header.
    Valid,
    /// No `Authorization` header at all.
    Missing,
    /// A header whose signature is wrong.
    BadSignature,
    /// Correctly signed, but for another destination.
    WrongDestination,
    /// Signed with a key the peer does not publish.
    UnknownKey,
    /// This exact `Authorization` header.
    Header(String),
}

/// A request Hearth sent to the peer.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PUT`…
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
}

struct Peer {
    server_name: OwnedServerName,
    key: Ed25519KeyPair,
    recorded: Mutex<Vec<Recorded>>,
    /// (method, path) → (status, body).
    scripted: Mutex<HashMap<(String, String), (u16, Value)>>,
}

/// A running fake peer, stopped when dropped.
pub struct FakePeer {
    /// Its server name, e.g. `fake-abcdefghij.test`.
    pub server_name: String,
    /// Base URL of its TLS listener, e.g. `https://127.0.0.1:41236`.
    pub url: String,
    peer: Arc<Peer>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh ed25519 key with this version.
pub fn generate_key(version: &str) -> Ed25519KeyPair {
    let document = Ed25519KeyPair::generate();
    Ed25519KeyPair::from_der(&document, version.to_owned()).expect("reading the generated key")
}

impl FakePeer {
    /// Starts a peer on a free loopback port.
    pub async fn start() -> FakePeer {
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(10)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        let server_name = format!("fake-{suffix}.test");
        let dir = tempfile::tempdir().expect("a directory for the peer");
        let (cert, key_file) = test_ca().issue(dir.path(), &server_name);
        let mut tls = Config::default().federation;
        (tls.tls_cert, tls.tls_key) = (Some(cert), Some(key_file));
        let name = OwnedServerName::try_from(server_name.as_str()).expect("a server name");
        let tls = hearth_federation::tls::server_config(&tls, &name).expect("the peer's TLS configuration");
        let listener = TlsListener::bind("127.0.0.1:0".parse().expect("an address"), tls)
            .await
            .expect("binding the peer");
        let url = format!("https://{}", axum::serve::Listener::local_addr(&listener).expect("an address"));
        let peer = Arc::new(Peer {
            server_name: name,
            key: generate_key("fake1"),
            recorded: Mutex::default(),
            scripted: Mutex::default(),
        });
        let app = Router::new().fallback(answer).with_state(peer.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service()).await;
        });
        FakePeer { server_name, url, peer, task, _dir: dir }
    }

    /// The ID of the key the peer signs with, e.g. `ed25519:fake1`.
    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.peer.key.version())
    }

    /// Makes Hearth reach this peer at its loopback URL.
    pub fn introduce_to(&self, hs: &mut TestServer) {
        hs.add_federation_peer(&self.server_name, &self.url);
    }

    /// Answers `method path` (path without query) with `status` and `body` from now on; a path
    /// ending in `*` answers every path starting with what comes before it.
    pub fn respond(&self, method: Method, path: &str, status: u16, body: Value) {
        let mut scripted = self.peer.scripted.lock().expect("the script");
        scripted.insert((method.to_string(), path.to_owned()), (status, body));
    }

    /// Every request Hearth sent so far (key requests included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.peer.recorded.lock().expect("the recorded requests").clone()
    }

    /// Waits (at most 10 s) for a request whose path starts with `prefix`.
    pub async fn wait_for_request(&self, prefix: &str) -> Recorded {
        eventually(&format!("a request to {prefix}"), Duration::from_secs(10), || async {
            self.requests().into_iter().find(|r| r.uri.starts_with(prefix))
        })
        .await
    }

    /// Sends `method path` with `body` to `hs`'s federation listener, signed as `signing` says.
    pub async fn request(
        &self,
        hs: &TestServer,
        method: Method,
        path: &str,
        body: Option<&Value>,
        signing: Signing,
    ) -> Response {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("a serialisable body"));
        let authorization = self.authorization(&hs.server_name, &method, path, bytes.as_deref(), signing);
        let mut headers = vec![("content-type", "application/json")];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        hs.federation_client().send(method, path, &headers, bytes).await
    }

    /// The `Authorization` header for a request, as `signing` says.
    pub fn authorization(
        &self,
        destination: &str,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        signing: Signing,
    ) -> Option<String> {
        let destination = match signing {
            Signing::Missing => return None,
            Signing::Header(header) => return Some(header),
            Signing::WrongDestination => "elsewhere.test",
            _ => destination,
        };
        let request = http::Request::builder()
            .method(method.as_str())
            .uri(path)
            .body(body.unwrap_or_default().to_vec())
            .expect("a request");
        let unknown = generate_key("unpublished");
        let key = if matches!(signing, Signing::UnknownKey) { &unknown } else { &self.peer.key };
        let input = XMatrixSigningInput::new(
            self.peer.server_name.clone(),
            destination.try_into().expect("a server name"),
            key,
        );
        let mut x_matrix = XMatrix::sign_http_request(&request, input).expect("signing the request");
        if matches!(signing, Signing::BadSignature) {
            x_matrix.sig = Base64::new(vec![7; 64]);
        }
        Some(x_matrix.to_string())
    }

    /// Adds the content hash and the peer's signature to an event (in `version`'s format).
    pub fn sign_pdu(&self, object: &mut CanonicalJsonObject, version: &RoomVersionId) {
        let rules = version.rules().expect("a supported room version");
        ruma::signatures::hash_and_sign_event(
            self.peer.server_name.as_str(),
            &self.peer.key,
            object,
            &rules.redaction,
        )
        .expect("signing the event");
    }

    /// Adds the peer's signature to a JSON object.
    pub fn sign_json(&self, object: &mut CanonicalJsonObject) {
        ruma::signatures::sign_json(self.peer.server_name.as_str(), &self.peer.key, object).expect("signing");
    }
}

/// The peer's answer to everything: its key at `/_matrix/key/v2/server`, a scripted answer, or
/// 404 `M_UNRECOGNIZED`; every request is recorded.
async fn answer(State(peer): State<Arc<Peer>>, request: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.path_and_query().map_or(path.clone(), |p| p.as_str().to_owned()),
        authorization: parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    peer.recorded.lock().expect("the recorded requests").push(recorded);
    let scripted = {
        let script = peer.scripted.lock().expect("the script");
        let method = parts.method.to_string();
        script.get(&(method.clone(), path.clone())).cloned().or_else(|| {
            script
                .iter()
                .filter(|((m, p), _)| {
                    *m == method && p.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                })
                .max_by_key(|((_, p), _)| p.len())
                .map(|(_, answer)| answer.clone())
        })
    };
    if let Some((status, body)) = scripted {
        let status = StatusCode::from_u16(status).expect("a valid status");
        return (status, Json(body)).into_response();
    }
    if parts.method == Method::GET && path.starts_with("/_matrix/key/v2/server") {
        return Json(own_keys(&peer)).into_response();
    }
    (StatusCode::NOT_FOUND, Json(json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})))
        .into_response()
}

/// The peer's key response, self-signed, valid for an hour.
fn own_keys(peer: &Peer) -> Value {
    let valid_until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() + 3_600_000);
    let unsigned = json!({
        "server_name": peer.server_name,
        "verify_keys": {
            format!("ed25519:{}", peer.key.version()): { "key": Base64::<ruma::serde::base64::Standard, _>::new(peer.key.public_key().to_vec()).encode() }
        },
        "old_verify_keys": {},
        "valid_until_ts": u64::try_from(valid_until).unwrap_or(u64::MAX),
    });
    let mut object: CanonicalJsonObject = serde_json::from_value(unsigned).expect("canonical JSON");
    ruma::signatures::sign_json(peer.server_name.as_str(), &peer.key, &mut object).expect("signing the keys");
    serde_json::to_value(object).expect("JSON")
}
