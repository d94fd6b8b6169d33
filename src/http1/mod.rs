//! Hearth's own HTTP/1.1 server for the client listener.
//!
//! hyper keeps an 8 KiB read buffer per connection from the first request on (a second one
//! while a request is in flight) and an 8 KiB write buffer, with no setting to go lower: ~40 KB
//! per waiting `/sync` long-poll. This server parses heads with `httparse` (hyper's parser)
//! into owned `http` types and frees the bytes, so a connection waiting for its answer or for
//! its next request holds no buffer at all (docs/ARCHITECTURE.md › The client listener). It
//! dispatches into the same axum [`Router`]; requests that switch protocols go to hyper.

mod body;
mod connection;
mod head;
#[cfg(test)]
mod tests;
mod upgrade;

use std::{future::Future, io, time::Duration};

use axum::Router;
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};

/// Limits on what clients send.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long a client may take to send a request head once it has begun.
    pub header_timeout: Duration,
    /// The longest request head accepted (longer: 431).
    pub max_head: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { header_timeout: Duration::from_secs(30), max_head: 64 * 1024 }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, closes idle
/// connections, lets in-flight requests finish and returns when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    options: Options,
) -> io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` once all have ended.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are written whole; waiting for an ACK before the next write only adds delay.
        let _ = stream.set_nodelay(true);
        // Spawned as it is: wrapped in another future, the task would hold it twice.
        tokio::spawn(connection::serve(stream, peer, app.clone(), stopping.clone(), options, open.clone()));
    }
    drop(listener);
    stop.send_replace(true);
    drop(open);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Resolves once shutdown has begun.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's future.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A failed `accept`: per-connection errors are skipped; running out of file descriptors (or
/// another resource) pauses accepting for a second, as hyper's and axum's servers do.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tracing::error!(%error, "accepting a connection");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
