//! One client connection: requests read, dispatched and answered in order, holding no buffer
//! while a request is in flight or the connection waits for the next one.

use std::{io, net::SocketAddr, pin::pin};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header, response::Parts,
    },
    response::Response,
};
use hearth_client_api::defer::{CanDefer, Deferred};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::{
    io::AsyncWriteExt,
    net::TcpStream,
    sync::{mpsc, watch},
};
use tower::ServiceExt;

use super::{
    Options, body,
    head::{self, Delimit, Head, Parsed},
    upgrade,
};

/// The first read of a request head; the buffer doubles while the head is longer.
const FIRST_READ: usize = 1024;

/// Serves `stream` until the client closes it, a request asks to close, or shutdown begins;
/// `_open` is dropped when it returns (the server waits for every connection's at shutdown).
pub(super) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
    options: Options,
    _open: mpsc::Sender<()>,
) {
    // Bytes received but not yet used: part of a head, or requests pipelined behind this one.
    // Empty (and unallocated) while a client waits for its answer or between requests.
    let mut pending = Vec::new();
    loop {
        // Every step is boxed: the connection task is as large as its largest state for as
        // long as the connection lives, and most of the time it waits for an answer.
        if pending.is_empty() && !Box::pin(next_request(&stream, &mut pending, &mut shutdown)).await {
            return;
        }
        let reading = Box::pin(tokio::time::timeout(
            options.header_timeout,
            read_head(&stream, &mut pending, &options),
        ));
        let head = match reading.await {
            Ok(Ok(Some(Parsed::Complete(head)))) => head,
            Ok(Ok(Some(Parsed::Invalid(status)))) => return Box::pin(refuse(&mut stream, status)).await,
            // Closed between requests or mid-head, failed, or too slow to send its head.
            Ok(Ok(Some(Parsed::Partial) | None)) | Ok(Err(_)) | Err(_) => return,
        };
        if head.upgrade {
            // hyper reads the head again from the bytes already received.
            return Box::pin(upgrade::serve(stream, std::mem::take(&mut pending), peer, app, shutdown)).await;
        }
        pending.drain(..head.len);
        if pending.is_empty() {
            pending = Vec::new();
        }
        let exchanging = exchange(&mut stream, &mut pending, head, peer, &app, &shutdown);
        let Ok(keep_alive) = Box::pin(exchanging).await else {
            return;
        };
        if !keep_alive {
            let _ = Box::pin(stream.shutdown()).await;
            return;
        }
    }
}

/// Idles until the next request's first bytes arrive (readiness can be stale: only a read
/// tells), without a buffer and without the head's timeout; `false` when the client closes or
/// shutdown begins.
async fn next_request(
    stream: &TcpStream,
    pending: &mut Vec<u8>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    while pending.is_empty() {
        tokio::select! {
            ready = stream.readable() => if ready.is_err() { return false },
            () = super::stopping(shutdown) => return false,
        }
        match read_first(stream, pending) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads what has arrived (up to [`FIRST_READ`] bytes) into `pending`, allocating only for
/// bytes actually received.
fn read_first(stream: &TcpStream, pending: &mut Vec<u8>) -> io::Result<usize> {
    let mut first = [0u8; FIRST_READ];
    let n = stream.try_read(&mut first)?;
    pending.extend_from_slice(&first[..n]);
    Ok(n)
}

/// Reads until `pending` holds a whole head (or a malformed one); `None` when the client closes.
async fn read_head(
    stream: &TcpStream,
    pending: &mut Vec<u8>,
    options: &Options,
) -> io::Result<Option<Parsed>> {
    loop {
        if !pending.is_empty() {
            match head::parse(pending, options.max_head) {
                Parsed::Partial => {}
                parsed => return Ok(Some(parsed)),
            }
        }
        stream.readable().await?;
        if pending.capacity() == pending.len() {
            pending.reserve(pending.len().max(FIRST_READ));
        }
        match stream.try_read_buf(pending) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Runs one request through `app` and writes the answer. `Ok(false)` when the connection must
/// close after it; `Err` when the client went away.
async fn exchange(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    head: Box<Head>,
    peer: SocketAddr,
    app: &Router,
    shutdown: &watch::Receiver<bool>,
) -> io::Result<bool> {
    // Taken out of its box by a call: a box destructured in place is freed only when this
    // function returns, and this one lasts as long as the request.
    let Head { request, body: kind, keep_alive, expect_continue, .. } = unbox(head);
    let version = request.version();
    let bodiless = request.method() == Method::HEAD;
    let (body, mut feeder) = body::channel(kind);
    if expect_continue && feeder.feeding() && pending.is_empty() {
        Box::pin(stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")).await?;
    }
    // Whether to watch for the client hanging up (hyper drops the handler then, too).
    let mut watch = true;
    let calling = {
        let mut request: Request<Body> = request.map(|()| body);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(CanDefer);
        Box::pin(answer(app.clone().oneshot(request), &mut feeder, stream, pending, &mut watch))
    };
    let Ok(mut response) = calling.await?;
    if let Some(later) = Deferred::take(&mut response) {
        // The handler goes on waiting; the router's and the middleware's futures are gone. The
        // answer gets the headers the middleware put on the placeholder (CORS), kept meanwhile
        // as a list, which is smaller than a header map.
        let added: Vec<_> = middleware_headers(response.into_parts().0.headers).collect();
        response = Box::pin(answer(later, &mut feeder, stream, pending, &mut watch)).await?;
        let own: Vec<HeaderName> = response.headers().keys().cloned().collect();
        for (name, value) in added.into_iter().filter(|(name, _)| !own.contains(name)) {
            response.headers_mut().append(name, value);
        }
    }
    feeder.skip_received(pending);
    let keep_alive = keep_alive
        && feeder.finished()
        && !*shutdown.borrow()
        && !head::has_token(response.headers(), "close");
    Box::pin(write_response(stream, response, bodiless, keep_alive, version)).await
}

/// The headers of a placeholder response but those describing its (empty) body.
fn middleware_headers(headers: HeaderMap) -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    let mut name: Option<HeaderName> = None;
    headers.into_iter().filter_map(move |(next, value)| {
        // `None` repeats the previous name.
        if next.is_some() {
            name = next;
        }
        let name = name.clone()?;
        let body = name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONTENT_TYPE;
        (!body).then_some((name, value))
    })
}

/// The value in `boxed`, its box freed.
#[expect(clippy::boxed_local, reason = "taking the box is the point: it is freed on return")]
fn unbox<T>(boxed: Box<T>) -> T {
    *boxed
}

/// Awaits `answer` while feeding it the request body and watching for the client hanging up
/// (`watch` turns false once the next request arrives, which waits in the socket).
async fn answer<T>(
    answer: impl Future<Output = T>,
    feeder: &mut body::Feeder,
    stream: &TcpStream,
    pending: &mut Vec<u8>,
    watch: &mut bool,
) -> io::Result<T> {
    let mut answer = pin!(answer);
    loop {
        tokio::select! {
            biased;
            answered = &mut answer => return Ok(answered),
            () = feeder.feed(stream, pending), if feeder.feeding() => {}
            closed = hung_up(stream), if *watch && feeder.finished() && pending.is_empty() => {
                if closed {
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
                *watch = false;
            }
        }
    }
}

/// Whether the client closed its side (peeking, so a pipelined request stays unread).
async fn hung_up(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    !matches!(stream.peek(&mut byte).await, Ok(n) if n > 0)
}

/// Writes `response`: the head with the first body frame in one write, then each frame.
/// Returns whether the connection stays open.
async fn write_response(
    stream: &mut TcpStream,
    response: Response,
    bodiless: bool,
    mut keep_alive: bool,
    version: Version,
) -> io::Result<bool> {
    let (parts, mut body) = response.into_parts();
    let delimit = delimit(&parts, &body, bodiless, version);
    keep_alive &= delimit != Delimit::Close;
    let mut out = head::response(&parts, delimit, keep_alive, version);
    let mut left = match delimit {
        Delimit::Length(n) => n,
        _ => u64::MAX,
    };
    if !matches!(delimit, Delimit::None | Delimit::Bodiless) {
        while let Some(frame) = body.frame().await {
            let Ok(mut data) = frame.map_err(io::Error::other)?.into_data() else { continue };
            data.truncate(usize::try_from(left).unwrap_or(usize::MAX));
            if data.is_empty() {
                continue;
            }
            left -= data.len() as u64;
            if delimit == Delimit::Chunked {
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(&data);
            }
            if !body.is_end_stream() {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        if delimit == Delimit::Chunked {
            out.extend_from_slice(b"0\r\n\r\n");
        }
    }
    stream.write_all(&out).await?;
    // A body shorter than its announced length leaves the client waiting: close.
    Ok(keep_alive && (left == 0 || !matches!(delimit, Delimit::Length(_))))
}

/// How the body of a response is delimited: its exact size, else the `Content-Length` the
/// handler set (media downloads stream a file of known size), else chunks (HTTP/1.0: close).
fn delimit(parts: &Parts, body: &Body, bodiless: bool, version: Version) -> Delimit {
    let status = parts.status;
    let announced = || parts.headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok();
    if status.is_informational() || status == StatusCode::NO_CONTENT {
        Delimit::None
    } else if bodiless || status == StatusCode::NOT_MODIFIED {
        Delimit::Bodiless
    } else if let Some(n) = body.size_hint().exact().or_else(announced) {
        Delimit::Length(n)
    } else if version == Version::HTTP_11 {
        Delimit::Chunked
    } else {
        Delimit::Close
    }
}

/// Answers a request that never reached the application, and closes.
async fn refuse(stream: &mut TcpStream, status: StatusCode) {
    if stream.write_all(&head::refusal(status)).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
