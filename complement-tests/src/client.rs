//! A typed-enough Matrix client for tests: raw JSON in and out, so tests see exactly what a real
//! client would, plus helpers for the steps every test repeats (register, log in).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha1::Sha1;

use crate::server::SHARED_SECRET;

/// An HTTP client bound to one server, optionally logged in.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    /// The access token sent as `Authorization: Bearer`, if logged in.
    pub token: Option<String>,
    /// The user ID, once registered or logged in.
    pub user_id: Option<String>,
    /// The device ID, once registered or logged in.
    pub device_id: Option<String>,
}

/// An HTTP response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Clone, Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Parsed JSON body.
    pub body: Value,
    /// The body as text (lossily decoded), for answers that are not JSON.
    pub text: String,
    /// The body as received, for binary answers (media).
    pub bytes: Vec<u8>,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Response {
    /// Asserts the status code and returns the body.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        &self.body
    }

    /// Asserts a Matrix error with this status and errcode.
    #[track_caller]
    pub fn expect_error(&self, status: u16, errcode: &str) {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["errcode"], errcode, "unexpected errcode; body: {}", self.body);
    }
}

impl Client {
    /// A client for the server at `base_url`, not logged in.
    pub fn new(base_url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base_url: base_url.to_owned(),
            token: None,
            user_id: None,
            device_id: None,
        }
    }

    /// A client for the server at `base_url` that sends its requests through `http` (e.g. one
    /// that trusts the test CA, for a federation listener).
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Client {
        Client { http, ..Client::new(base_url) }
    }

    /// A copy of this client that sends `token`.
    pub fn with_token(&self, token: &str) -> Client {
        Client { token: Some(token.to_owned()), ..self.clone() }
    }

    /// Sends a request with a JSON body (or none) and reads the answer.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("serialisable body"));
        self.raw(method, path, bytes, Some("application/json")).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Response {
        let headers: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
        self.send(method, path, &headers, body).await
    }

    /// Sends a request with extra headers (a browser's `Origin`, a custom `Authorization`…) and
    /// raw bytes. The client's token, if any, is sent unless `headers` carries an
    /// `Authorization` of its own.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        let own_authorization = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        if let (Some(token), false) = (&self.token, own_authorization) {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("reading the response body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Response { status, body, text, bytes: bytes.to_vec(), headers }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(&body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(&body)).await
    }

    /// `DELETE path` with a JSON body.
    pub async fn delete(&self, path: &str, body: Value) -> Response {
        self.request(Method::DELETE, path, Some(&body)).await
    }

    /// Registers `username` through the `m.login.dummy` flow and returns a logged-in client.
    pub async fn register(&self, username: &str, password: &str) -> Client {
        let body = json!({
            "username": username,
            "password": password,
            "auth": { "type": "m.login.dummy" },
        });
        let response = self.post("/_matrix/client/v3/register", body).await;
        self.logged_in(response.expect_status(200))
    }

    /// Logs in with a password and returns a client using the new token.
    pub async fn login(&self, user: &str, password: &str) -> Client {
        let response = self.post("/_matrix/client/v3/login", password_login(user, password)).await;
        self.logged_in(response.expect_status(200))
    }

    /// Registers through the shared-secret admin API.
    pub async fn admin_register(&self, username: &str, password: &str, admin: bool) -> Response {
        self.admin_register_with(SHARED_SECRET, username, password, admin).await
    }

    /// Registers through the shared-secret admin API of a server whose secret is `secret`.
    pub async fn admin_register_with(
        &self,
        secret: &str,
        username: &str,
        password: &str,
        admin: bool,
    ) -> Response {
        let nonce = self.get("/_synapse/admin/v1/register").await;
        let nonce = nonce.expect_status(200)["nonce"].as_str().expect("nonce").to_owned();
        let mac = admin_mac(secret, &nonce, username, password, admin);
        let body =
            json!({ "nonce": nonce, "username": username, "password": password, "admin": admin, "mac": mac });
        self.post("/_synapse/admin/v1/register", body).await
    }

    fn logged_in(&self, body: &Value) -> Client {
        Client {
            token: body["access_token"].as_str().map(str::to_owned),
            user_id: body["user_id"].as_str().map(str::to_owned),
            device_id: body["device_id"].as_str().map(str::to_owned),
            ..self.clone()
        }
    }

    /// `POST /createRoom` with `body`; the new room's ID.
    pub async fn create_room(&self, body: Value) -> String {
        let response = self.post("/_matrix/client/v3/createRoom", body).await;
        response.expect_status(200)["room_id"].as_str().expect("room_id").to_owned()
    }

    /// `GET /sync` with `since` (none for an initial sync), a filter (inline JSON) and a
    /// long-poll timeout in milliseconds; the response, which must be 200.
    pub async fn sync(&self, since: Option<&str>, filter: Option<&Value>, timeout_ms: u64) -> Value {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(since) = since {
            path.push_str(&format!("&since={}", enc(since)));
        }
        if let Some(filter) = filter {
            path.push_str(&format!("&filter={}", enc(&filter.to_string())));
        }
        let response = self.get(&path).await;
        response.expect_status(200).clone()
    }

    /// The user ID of a logged-in client.
    pub fn me(&self) -> &str {
        self.user_id.as_deref().expect("a logged-in client")
    }
}

/// Percent-encodes one URL path segment or query value: everything but RFC 3986's unreserved
/// characters (so `!`, `#`, `:`, `@`, `$` and non-ASCII are escaped).
pub fn enc(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An `m.login.password` request body with an `m.id.user` identifier.
pub fn password_login(user: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
    })
}

/// UIA `auth` for `m.login.password`.
pub fn password_auth(user: &str, password: &str, session: Option<&str>) -> Value {
    let mut auth = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
    });
    if let Some(session) = session {
        auth["session"] = json!(session);
    }
    auth
}

/// The HMAC-SHA1 of Synapse-compatible shared-secret registration, hex-encoded.
pub fn admin_mac(secret: &str, nonce: &str, username: &str, password: &str, admin: bool) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    for (i, part) in [nonce, username, password, if admin { "admin" } else { "notadmin" }].iter().enumerate()
    {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
