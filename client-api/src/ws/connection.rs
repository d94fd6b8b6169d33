//! One WebSocket connection: a loop over `sync::sync`, the client's frames and a keep-alive
//! ping, in a single task.
//!
//! **Back-pressure.** Frames are written as each sync response arrives, and the next sync starts
//! only once they are written: what waits for a slow client is one response (sync coalesces
//! everything since the last position into the next one), never a growing queue. A frame the
//! client does not take within `websocket.send_timeout_ms` (its receive buffer and ours full)
//! closes the socket with 4008.
//!
//! **Resumption.** Every batch ends with its sync token (`next_batch` of the sync frame, or a
//! `position` frame in the simple format); `?since=` that token on a new socket continues from
//! there. To-device messages are the one stream sync deletes once acknowledged: a sync frame
//! carrying any waits for the client's `{"type":"ack","next_batch":...}` before the next sync
//! runs (which deletes them), exactly as `/sync` waits for the next request.
//!
//! **Idle cost.** An idle socket is this task waiting on its user's notifier slot, the socket's
//! read and two timers: syncs run with no timeout, the loop does the waiting, and every handler
//! is boxed, so the task's future is small (docs/BENCHMARKS.md › WebSocket channel).

use std::{future::Future, pin::Pin, time::Duration};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use hearth_core::{
    Homeserver,
    accounts::{User, sessions},
    filters::SyncFilter,
    sync::{self, SyncRequest, SyncToken},
};
use ruma::presence::PresenceState;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use super::{
    Format,
    commands::{self, ClientFrame},
    delivery,
    vocabulary::Vocabulary,
};

/// Close codes (4000–4999 are the application's).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_INTERNAL: u16 = 1011;
const CLOSE_SILENT: u16 = 4000;
const CLOSE_UNKNOWN_TOKEN: u16 = 4001;
const CLOSE_SLOW: u16 = 4008;

/// How long the close frame may take to leave before the connection is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Everything the handler learnt before upgrading.
pub(super) struct Session {
    pub hs: Homeserver,
    pub user: User,
    /// The access token, checked again at every ping: a logout ends the socket.
    pub token: String,
    pub since: Option<SyncToken>,
    /// As JSON (a parsed filter is a kilobyte, mostly empty), parsed by each sync.
    pub filter: SyncFilter,
    pub format: Format,
}

type SyncFuture = Pin<Box<dyn Future<Output = hearth_core::Result<Value>> + Send>>;

/// How a connection ended.
enum Ended {
    /// The server closed it, and counted why.
    Closed,
    /// The client went (`client`) or could not be written to; the `reason` label of
    /// `hearth_websockets_closed`.
    Gone(&'static str),
}

/// Serves the socket until either side closes it.
pub(super) async fn run(session: Session, socket: WebSocket) {
    let metrics_hs = session.hs.clone();
    metrics_hs.metrics().websocket_opened();
    let vocabulary = Vocabulary::new(session.user.user_id.clone());
    let connection =
        Connection { session, socket, vocabulary, unacknowledged: None, undelivered: Default::default() };
    // Boxed at its own size: the spawned task then holds a pointer while the socket lives.
    if let Ended::Gone(reason) = Box::pin(connection.serve()).await {
        metrics_hs.metrics().websocket_closed(reason);
    }
}

struct Connection {
    session: Session,
    socket: WebSocket,
    vocabulary: Vocabulary,
    /// The `next_batch` of a sent frame with to-device messages, until the client acks it.
    unacknowledged: Option<String>,
    /// Messages written but not yet proven received.
    undelivered: delivery::Pending,
}

impl Connection {
    async fn serve(mut self) -> Ended {
        let hs = self.session.hs.clone();
        let ping_interval = Duration::from_secs(hs.config().websocket.ping_interval_secs);
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        let mut last_heard = Instant::now();
        // Subscribed before the first sync reads: whatever commits after that read wakes the
        // wait below, so nothing falls between two syncs.
        let mut listener = hs.notifier().listen(&self.session.user.user_id);
        // Each sync marks the user online again; syncing at least twice per offline delay keeps
        // an idle socket's user from being swept offline.
        let refresh = Duration::from_secs((hs.config().presence.offline_after_secs / 2).clamp(30, 300));
        let mut refresh_at = Instant::now() + refresh;
        let mut closing = hs.closing();
        if *closing.borrow() {
            return self.close(CLOSE_GOING_AWAY, "Server shutting down", "shutdown").await;
        }
        let mut sync = Some(self.next_sync());
        loop {
            let idle = sync.is_none() && self.unacknowledged.is_none();
            // The handlers are boxed: the task's own future stays small, whatever they hold.
            let step = tokio::select! {
                response = running(&mut sync) => {
                    sync = None;
                    refresh_at = Instant::now() + refresh;
                    Box::pin(self.on_sync(response)).await
                }
                _ = listener.wait(refresh_at), if idle => {
                    sync = Some(self.next_sync());
                    Ok(())
                }
                message = self.socket.recv() => {
                    last_heard = Instant::now();
                    match message {
                        Some(Ok(Message::Text(text))) => Box::pin(self.on_text(text.as_str())).await,
                        Some(Ok(Message::Binary(_))) => {
                            let error = hearth_core::Error::bad_json("Frames are JSON text");
                            Box::pin(self.send(commands::error_frame(&error, &Value::Null))).await
                        }
                        Some(Ok(Message::Pong(payload))) if payload == delivery::PING => {
                            Box::pin(self.confirm_delivery()).await
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return Ended::Gone("client"),
                    }
                }
                _ = ping.tick() => Box::pin(self.keep_alive(last_heard, ping_interval)).await,
                // `closing` only ever turns true.
                Ok(()) = closing.changed() => {
                    Err(Box::pin(self.close(CLOSE_GOING_AWAY, "Server shutting down", "shutdown")).await)
                }
            };
            if let Err(ended) = step {
                return ended;
            }
        }
    }

    /// The next sync from the current position, owning what it borrows so it can be kept across
    /// loop turns. It does not wait (the loop waits on the notifier, which costs far less than
    /// a sync's state machine); boxed, so only a running sync holds its state.
    fn next_sync(&self) -> SyncFuture {
        let hs = self.session.hs.clone();
        let (user, device) = (self.session.user.user_id.clone(), self.session.user.device_id.clone());
        let (since, filter) = (self.session.since, self.session.filter.clone());
        Box::pin(async move {
            let request = SyncRequest {
                user: &user,
                device: &device,
                since,
                filter,
                full_state: false,
                set_presence: Some(PresenceState::Online),
                timeout: Duration::ZERO,
            };
            sync::sync(&hs, &request).await
        })
    }

    async fn on_sync(&mut self, response: hearth_core::Result<Value>) -> Result<(), Ended> {
        match response {
            Ok(response) => self.deliver(response).await,
            Err(error) => {
                tracing::error!(error = %error, "WebSocket sync failed");
                Err(self.close(CLOSE_INTERNAL, "Internal server error", "error").await)
            }
        }
    }

    /// Sends what a sync response carries in the socket's format and moves the position on.
    async fn deliver(&mut self, mut response: Value) -> Result<(), Ended> {
        let next_batch = response["next_batch"].as_str().unwrap_or_default().to_owned();
        let position = SyncToken::parse(&next_batch).map_err(|_| Ended::Gone("error"))?;
        if self.session.since.is_some() && !has_news(&response) {
            // A long-poll that timed out: nothing to say, and nothing a resume would repeat.
            self.session.since = Some(position);
            return Ok(());
        }
        // Noted now, proven by the pong to a ping written after the batch.
        let ask_delivery = self.undelivered.note(&self.session.hs, &self.session.user.user_id, &response);
        let format = self.session.format;
        if format != Format::Sync {
            let frames = match self.vocabulary.frames(&self.session.hs, &response).await {
                Ok(frames) => frames,
                Err(error) => {
                    tracing::error!(error = %error, "WebSocket vocabulary failed");
                    return Err(self.close(CLOSE_INTERNAL, "Internal server error", "error").await);
                }
            };
            for frame in frames {
                self.send(frame).await?;
            }
        }
        if format == Format::Simple {
            self.send(json!({ "type": "position", "next_batch": next_batch })).await?;
        } else {
            let to_device = response["to_device"]["events"].as_array().is_some_and(|e| !e.is_empty());
            if to_device {
                self.unacknowledged = Some(next_batch);
            }
            if let Some(object) = response.as_object_mut() {
                object.insert("type".to_owned(), json!("sync"));
            }
            self.send(response).await?;
        }
        self.session.since = Some(position);
        if ask_delivery {
            self.write(Message::Ping(delivery::PING.into())).await?;
        }
        Ok(())
    }

    /// The client proved it read what was written: record delivery.
    async fn confirm_delivery(&mut self) -> Result<(), Ended> {
        if let Err(error) = self.undelivered.confirm(&self.session.hs, &self.session.user.user_id).await {
            tracing::error!(error = %error, "recording delivery failed");
            return Err(self.close(CLOSE_INTERNAL, "Internal server error", "error").await);
        }
        Ok(())
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Ended> {
        let reply = match commands::parse(text) {
            Err(error_frame) => error_frame,
            Ok((ClientFrame::Ack { next_batch }, request_id)) => {
                if self.unacknowledged.as_ref() == Some(&next_batch) {
                    self.unacknowledged = None;
                }
                self.confirm_delivery().await?;
                // Acks are not answered unless they are wrong.
                if SyncToken::parse(&next_batch).is_ok() {
                    return Ok(());
                }
                let error = hearth_core::Error::invalid_param("Invalid next_batch");
                commands::error_frame(&error, &request_id)
            }
            Ok((frame, request_id)) => {
                let (hs, user) = (&self.session.hs, &self.session.user);
                // Boxed: a command's state is large and only exists while it runs.
                Box::pin(commands::run(hs, user, frame, &request_id)).await
            }
        };
        self.send(reply).await
    }

    /// Every ping interval: close a silent socket or one whose token was revoked; else ping.
    async fn keep_alive(&mut self, last_heard: Instant, interval: Duration) -> Result<(), Ended> {
        if last_heard.elapsed() > 2 * interval {
            return Err(self.close(CLOSE_SILENT, "No pong", "silent").await);
        }
        if sessions::authenticate(&self.session.hs, &self.session.token).await.is_err() {
            return Err(self.close(CLOSE_UNKNOWN_TOKEN, "M_UNKNOWN_TOKEN", "token").await);
        }
        self.write(Message::Ping(Default::default())).await
    }

    async fn send(&mut self, frame: Value) -> Result<(), Ended> {
        self.write(Message::Text(frame.to_string().into())).await
    }

    /// Writes one message, giving the client `send_timeout_ms` to take it.
    async fn write(&mut self, message: Message) -> Result<(), Ended> {
        let limit = Duration::from_millis(self.session.hs.config().websocket.send_timeout_ms);
        match timeout(limit, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ended::Gone("client")),
            Err(_) => Err(self.close(CLOSE_SLOW, "Too slow: frames were not read in time", "slow").await),
        }
    }

    /// Closes the socket with `code` (the closing handshake within [`CLOSE_GRACE`]).
    async fn close(&mut self, code: u16, reason: &'static str, label: &'static str) -> Ended {
        // Counted first: a client that stopped reading can learn from the metrics that it is
        // being closed, then read up to the close frame.
        self.session.hs.metrics().websocket_closed(label);
        let frame = CloseFrame { code, reason: reason.into() };
        let deadline = Instant::now() + CLOSE_GRACE;
        let closing = tokio::time::timeout_at(deadline, self.socket.send(Message::Close(Some(frame))));
        if let Ok(Ok(())) = closing.await {
            // Read until the client's close (or the grace ends): dropping a socket with unread
            // input resets the connection, and the client would lose the close frame with it.
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.socket.recv()).await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        }
        Ended::Closed
    }
}

/// Polls the running sync, if any.
async fn running(sync: &mut Option<SyncFuture>) -> hearth_core::Result<Value> {
    match sync {
        Some(sync) => sync.await,
        None => std::future::pending().await,
    }
}

/// Whether a sync response carries anything (a timed-out long-poll carries nothing).
fn has_news(response: &Value) -> bool {
    let non_empty = |value: &Value| match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
        _ => false,
    };
    let rooms = &response["rooms"];
    ["join", "invite", "leave", "knock"].iter().any(|section| non_empty(&rooms[section]))
        || ["account_data", "presence", "to_device"]
            .iter()
            .any(|section| non_empty(&response[section]["events"]))
        || non_empty(&response["device_lists"]["changed"])
        || non_empty(&response["device_lists"]["left"])
}
