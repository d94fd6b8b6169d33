//! The server spoken to over raw TCP on loopback.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, oneshot, watch},
    task::JoinHandle,
};

use hearth_client_api::defer::{self, CanDefer};

use super::Options;

/// How long any step may take before the test fails (a deadline, not a measurement).
const DEADLINE: Duration = Duration::from_secs(10);

/// What the test handlers tell the tests.
#[derive(Clone, Default)]
struct Probe {
    /// Set when a `/wait` handler's future is dropped.
    dropped: Arc<watch::Sender<bool>>,
    /// Set when a `/gate` handler has begun; it answers once `release` is notified.
    entered: Arc<watch::Sender<bool>>,
    release: Arc<Notify>,
}

/// Marks the `/wait` handler's future dropped.
struct Guard(Probe);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.dropped.send_replace(true);
    }
}

fn app(probe: Probe) -> Router {
    let (gate, waiter) = (probe.clone(), probe.clone());
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route("/wait", get(move || wait_forever(probe.clone())))
        .route("/wait-later", get(move |request: Request| later(request, wait_forever(waiter.clone()))))
        .route(
            "/later",
            get(|request: Request| {
                later(request, async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    "answered later"
                })
            }),
        )
        .route(
            "/gate",
            get(move || async move {
                let released = gate.release.notified();
                gate.entered.send_replace(true);
                released.await;
                "opened"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = [Ok::<_, std::io::Error>(Bytes::from("ab")), Ok(Bytes::from("cd"))];
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        )
        .route(
            "/announced",
            get(|| async {
                let chunks = [Ok::<_, std::io::Error>(Bytes::from("ab")), Ok(Bytes::from("cd"))];
                ([("content-length", "4")], Body::from_stream(futures::stream::iter(chunks)))
            }),
        )
        .route("/nothing", get(|| async { StatusCode::NO_CONTENT }))
        .route("/upgrade", get(upgrade_to_echo))
        // As Hearth's middleware adds CORS headers.
        .layer(axum::middleware::map_response(|mut response: axum::response::Response| async {
            response.headers_mut().insert("x-layer", axum::http::HeaderValue::from_static("added"));
            response.headers_mut().append("x-layer", axum::http::HeaderValue::from_static("twice"));
            response
        }))
}

/// Never answers; marks the probe when dropped.
async fn wait_forever(probe: Probe) {
    let _guard = Guard(probe);
    std::future::pending::<()>().await;
}

/// `answer`, deferred to the connection where the request allows it (as `/sync` is).
async fn later(
    request: Request,
    answer: impl Future<Output: IntoResponse> + Send + 'static,
) -> axum::response::Response {
    let can_defer = request.extensions().get::<CanDefer>().is_some();
    assert!(can_defer, "the listener marks every request");
    defer::or_later(can_defer, answer).await
}

/// Switches to a protocol that echoes what it reads.
async fn upgrade_to_echo(mut request: Request) -> impl IntoResponse {
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = io.read(&mut buf).await {
            if io.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    (StatusCode::SWITCHING_PROTOCOLS, [("upgrade", "echo"), ("connection", "upgrade")])
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    probe: Probe,
}

async fn start(options: Options) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let probe = Probe::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(super::serve(listener, app(probe.clone()), shutdown, options));
    Running { addr, stop, task, probe }
}

async fn connect(server: &Running) -> TcpStream {
    TcpStream::connect(server.addr).await.expect("connect")
}

/// A parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `stream`, keeping what follows it in `buf`. `has_body` is false for
/// answers to `HEAD`.
async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>, has_body: bool) -> Answer {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(answer) = parse_answer(buf, has_body) {
                return answer;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed the connection; received {:?}", String::from_utf8_lossy(buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("an answer before the deadline")
}

fn parse_answer(buf: &mut Vec<u8>, has_body: bool) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(buf).expect("a valid response") else { return None };
    let status = response.code.expect("status");
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let mut answer = Answer { status, headers, body: Vec::new() };
    let rest = &buf[len..];
    let used = if !has_body || status == 204 || status == 101 {
        0
    } else if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().expect("a length");
        answer.body = rest.get(..length)?.to_vec();
        length
    } else {
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
        let mut at = 0;
        loop {
            let line_end = at + rest.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?, 16).ok()?;
            at = line_end + 2 + size + 2;
            if rest.len() < at {
                return None;
            }
            if size == 0 {
                break at;
            }
            answer.body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        }
    };
    buf.drain(..len + used);
    Some(answer)
}

/// Waits until the server closes `stream`, returning what it sent first.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut all))
        .await
        .expect("closed before the deadline")
        .ok();
    all
}

#[tokio::test]
async fn a_kept_alive_connection_answers_requests_one_after_another() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    let mut buf = Vec::new();
    for _ in 0..2 {
        stream.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let answer = read_answer(&mut stream, &mut buf, true).await;
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(answer.header("content-length"), Some("5"));
        assert!(answer.header("date").is_some());
        assert_eq!(answer.header("connection"), None);
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    let requests = "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none\
                    GET /hello HTTP/1.1\r\n\r\n\
                    POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n";
    stream.write_all(requests.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(read_answer(&mut stream, &mut buf, true).await.body);
    }
    assert_eq!(bodies, [&b"one"[..], b"hello", b"two"]);
}

#[tokio::test]
async fn a_chunked_body_arriving_in_pieces_is_read_whole() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        .await
        .expect("write");
    stream.write_all(b"lo\r\n6;x=y\r\n world\r\n0\r\n\r\n").await.expect("write");
    let answer = read_answer(&mut stream, &mut Vec::new(), true).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"hello world"[..]));
}

#[tokio::test]
async fn expect_continue_is_answered_before_the_body_is_sent() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    assert_eq!(read_answer(&mut stream, &mut buf, false).await.status, 100);
    stream.write_all(b"ping").await.expect("write");
    let answer = read_answer(&mut stream, &mut buf, true).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ping"[..]));
}

#[tokio::test]
async fn malformed_and_oversized_heads_are_refused() {
    let server = start(Options { max_head: 512, ..Options::default() }).await;
    let cases: [(String, &str); 3] = [
        (format!("GET /hello HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(600)), "431"),
        ("POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n".into(), "400"),
        ("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n".into(), "400"),
    ];
    for (request, status) in cases {
        let mut stream = connect(&server).await;
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = String::from_utf8(read_to_close(&mut stream).await).expect("text");
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
    }
}

/// Sends `GET path`, hangs up, and waits until the handler behind it is dropped.
async fn hang_up_and_see_it_dropped(path: &str) {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut dropped = server.probe.dropped.subscribe();
    let waited = tokio::time::timeout(DEADLINE, dropped.wait_for(|dropped| *dropped)).await;
    assert!(waited.is_ok(), "{path}: the handler was not dropped before the deadline");
}

#[tokio::test]
async fn a_client_hanging_up_mid_request_drops_the_handler() {
    hang_up_and_see_it_dropped("/wait").await;
}

#[tokio::test]
async fn a_client_hanging_up_while_its_deferred_answer_waits_drops_the_wait() {
    hang_up_and_see_it_dropped("/wait-later").await;
}

#[tokio::test]
async fn a_deferred_answer_is_sent_whole_with_the_middleware_headers() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    let mut buf = Vec::new();
    for _ in 0..2 {
        stream.write_all(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let answer = read_answer(&mut stream, &mut buf, true).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"answered later");
        // The placeholder's empty length must not replace the answer's.
        assert_eq!(answer.header("content-length"), Some("14"));
        let layered: Vec<&str> =
            answer.headers.iter().filter(|(name, _)| name == "x-layer").map(|(_, v)| v.as_str()).collect();
        assert_eq!(layered, ["added", "twice"], "every value the middleware added");
    }
}

#[tokio::test]
async fn head_answers_carry_the_length_but_no_body() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"HEAD /hello HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n").await.expect("write");
    let mut buf = Vec::new();
    let head = read_answer(&mut stream, &mut buf, false).await;
    assert_eq!((head.status, head.header("content-length")), (200, Some("5")));
    let empty = read_answer(&mut stream, &mut buf, true).await;
    assert_eq!((empty.status, empty.header("content-length"), buf.len()), (204, None, 0));
}

#[tokio::test]
async fn bodies_of_unknown_length_are_chunked() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /stream HTTP/1.1\r\n\r\n").await.expect("write");
    let answer = read_answer(&mut stream, &mut Vec::new(), true).await;
    assert_eq!((answer.header("transfer-encoding"), answer.body.as_slice()), (Some("chunked"), &b"abcd"[..]));
}

#[tokio::test]
async fn a_stream_of_announced_length_is_sent_with_that_length() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /announced HTTP/1.1\r\n\r\n").await.expect("write");
    let answer = read_answer(&mut stream, &mut Vec::new(), true).await;
    assert_eq!((answer.header("content-length"), answer.body.as_slice()), (Some("4"), &b"abcd"[..]));
}

#[tokio::test]
async fn connection_close_and_http_1_0_end_the_connection_after_the_answer() {
    let server = start(Options::default()).await;
    for request in ["GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", "GET /stream HTTP/1.0\r\n\r\n"] {
        let mut stream = connect(&server).await;
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = String::from_utf8(read_to_close(&mut stream).await).expect("text");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("hello") || answer.ends_with("abcd"), "{answer}");
    }
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.expect("write");
    let answer = read_answer(&mut stream, &mut Vec::new(), true).await;
    assert_eq!(answer.header("connection"), Some("keep-alive"));
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_head_is_disconnected() {
    let server = start(Options { header_timeout: Duration::from_millis(100), ..Options::default() }).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /hello HTTP/1.1\r\n").await.expect("write");
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /peer HTTP/1.1\r\n\r\n").await.expect("write");
    assert_eq!(read_answer(&mut stream, &mut Vec::new(), true).await.body, b"127.0.0.1");
}

#[tokio::test]
async fn upgrades_are_handed_over_with_the_bytes_already_received() {
    let server = start(Options::default()).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /upgrade HTTP/1.1\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\nearly")
        .await
        .expect("write");
    let mut buf = Vec::new();
    assert_eq!(read_answer(&mut stream, &mut buf, false).await.status, 101);
    stream.write_all(b"-late").await.expect("write");
    tokio::time::timeout(DEADLINE, async {
        while buf != b"early-late" {
            let mut chunk = [0u8; 64];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed after {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the echo before the deadline");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_lets_requests_in_flight_finish() {
    let server = start(Options::default()).await;
    let mut busy = connect(&server).await;
    busy.write_all(b"GET /gate HTTP/1.1\r\n\r\n").await.expect("write");
    let mut entered = server.probe.entered.subscribe();
    tokio::time::timeout(DEADLINE, entered.wait_for(|e| *e)).await.expect("entered").expect("open");
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /hello HTTP/1.1\r\n\r\n").await.expect("write");
    read_answer(&mut idle, &mut Vec::new(), true).await;
    let _ = server.stop.send(());
    assert!(read_to_close(&mut idle).await.is_empty());
    assert!(!server.task.is_finished());
    server.probe.release.notify_one();
    let answer = String::from_utf8(read_to_close(&mut busy).await).expect("text");
    assert!(answer.contains("connection: close") && answer.ends_with("opened"), "{answer}");
    let served = tokio::time::timeout(DEADLINE, server.task).await.expect("stopped before the deadline");
    served.expect("joined").expect("served");
}

/// A connection task lives as long as its connection and mostly waits for the next request:
/// every step's state is boxed, so the task holds little more than the socket.
#[tokio::test]
async fn a_connection_task_is_small() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (_stop, stopping) = watch::channel(false);
    let (open, _closed) = tokio::sync::mpsc::channel(1);
    let serving = super::connection::serve(stream, addr, Router::new(), stopping, Options::default(), open);
    let size = std::mem::size_of_val(&serving);
    assert!(size <= 512, "a connection future of {size} bytes");
}
