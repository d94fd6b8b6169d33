//! `ws-bench`: load for Hearth's WebSocket channel (docs/BENCHMARKS.md › WebSocket channel),
//! against a running server. Never run by the tests.
//!
//! - `idle N`: opens N authenticated idle sockets (`format=simple`), spread over `--users`
//!   users in one room, in two halves, and reports the server's resident memory (VmRSS of
//!   `--pid`) before, after each half and after closing them. The second half's growth per
//!   socket is the figure (the first also warms caches and allocator arenas).
//! - `fanout --members M`: M users in one room, each with a socket resumed at the current
//!   position; a sender posts `--messages` messages, one every `--interval-ms`, and every socket
//!   times the `new_message` frame of each against its send: p50 / p99 / max over all frames.
//!
//! Users are registered through the shared-secret admin API (`--secret`, the server's
//! `registration.shared_secret`) and set online before any socket opens, so opening them
//! changes nobody's presence. Sockets bind to `--source-ips` loopback addresses in turn
//! (127.0.0.1, 127.0.0.2, …), each of which has its own ~28 000 ephemeral ports; the open-file
//! limits of this process and of the server must exceed the socket count (checked first).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use hearth_complement_tests::{Client, client::enc};
use serde_json::{Value, json};
use tokio::{net::TcpSocket, sync::mpsc};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

#[derive(Parser)]
#[command(about = "Load for Hearth's WebSocket channel")]
struct Args {
    /// The server's client API.
    #[arg(long, default_value = "http://127.0.0.1:8008")]
    url: String,
    /// The server's `registration.shared_secret`.
    #[arg(long)]
    secret: String,
    /// Loopback source addresses to spread the sockets over (127.0.0.1 and up).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Idle sockets and the server memory they cost.
    Idle {
        /// How many sockets.
        sockets: usize,
        /// The server's process ID, whose VmRSS is read.
        #[arg(long)]
        pid: u32,
        /// How many users the sockets are spread over.
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// How long each half stays idle before memory is read.
        #[arg(long, default_value_t = 10)]
        idle_seconds: u64,
    },
    /// Latency of one message to every member's socket.
    Fanout {
        /// Members of the room, each with a socket (the sender is one more).
        #[arg(long, default_value_t = 500)]
        members: usize,
        /// Messages sent.
        #[arg(long, default_value_t = 50)]
        messages: usize,
        /// Pause between two messages.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let address: SocketAddr = args
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .context("--url must be http://IP:PORT")?;
    let bench =
        Bench { url: args.url.trim_end_matches('/').to_owned(), address, source_ips: args.source_ips.max(1) };
    let report = match args.mode {
        Mode::Idle { sockets, pid, users, idle_seconds } => {
            check_open_files("self", sockets)?;
            check_open_files(&pid.to_string(), sockets)?;
            let idle = Duration::from_secs(idle_seconds);
            bench.idle(&args.secret, sockets, pid, users.clamp(1, sockets.max(1)), idle).await?
        }
        Mode::Fanout { members, messages, interval_ms } => {
            check_open_files("self", members)?;
            bench.fanout(&args.secret, members, messages, Duration::from_millis(interval_ms)).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

struct Bench {
    url: String,
    address: SocketAddr,
    source_ips: u8,
}

type Socket = WebSocketStream<tokio::net::TcpStream>;

impl Bench {
    /// Registers `count` users named `{prefix}_{i}`, all joined to one new room and online;
    /// their clients and the room.
    async fn users_in_a_room(
        &self,
        secret: &str,
        prefix: &str,
        count: usize,
    ) -> Result<(Vec<Client>, String)> {
        let anonymous = Client::new(&self.url);
        let mut users = Vec::with_capacity(count);
        for i in 0..count {
            let username = format!("{prefix}_{i}");
            let registered = anonymous.admin_register_with(secret, &username, "passw0rd!", false).await;
            ensure!(registered.status == 200, "registering {username}: {}", registered.body);
            let token = registered.body["access_token"].as_str().context("access_token")?;
            let mut user = anonymous.with_token(token);
            user.user_id = registered.body["user_id"].as_str().map(str::to_owned);
            users.push(user);
        }
        let room = users[0].post("/_matrix/client/v3/createRoom", json!({ "preset": "public_chat" })).await;
        let room_id = room.body["room_id"].as_str().context("creating the room")?.to_owned();
        for user in &users[1..] {
            let joined = user.post(&format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await;
            ensure!(joined.status == 200, "joining: {}", joined.body);
        }
        for user in &users {
            user.get("/_matrix/client/v3/sync?timeout=0&set_presence=online").await;
        }
        Ok((users, room_id))
    }

    /// Opens a socket for `user` resumed at `since`, the `n`-th of the run.
    async fn open(&self, user: &Client, since: &str, n: usize) -> Result<Socket> {
        let source = Ipv4Addr::new(127, 0, 0, 1 + (n % usize::from(self.source_ips)) as u8);
        let tcp = TcpSocket::new_v4()?;
        tcp.bind(SocketAddr::new(IpAddr::V4(source), 0)).with_context(|| format!("binding {source}"))?;
        let stream = tcp.connect(self.address).await.context("connecting")?;
        let token = user.token.as_deref().context("a token")?;
        let url = format!(
            "ws://{}/_hearth/client/v1/ws?format=simple&since={}&access_token={token}",
            self.address,
            enc(since)
        );
        let (socket, _) = tokio_tungstenite::client_async(url.into_client_request()?, stream).await?;
        Ok(socket)
    }

    async fn idle(
        &self,
        secret: &str,
        sockets: usize,
        pid: u32,
        users: usize,
        idle: Duration,
    ) -> Result<Value> {
        let prefix = format!("idle{}", std::process::id());
        let (users, _) = self.users_in_a_room(secret, &prefix, users).await?;
        let since =
            users[0].sync(None, None, 0).await["next_batch"].as_str().context("next_batch")?.to_owned();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss_kib(pid)?;
        let started = Instant::now();
        let half = sockets / 2;
        let (mut open, mut rss) = (Vec::with_capacity(sockets), Vec::new());
        for range in [0..half, half..sockets] {
            for chunk in range.collect::<Vec<_>>().chunks(100) {
                let opening = chunk.iter().map(|&n| self.open(&users[n % users.len()], &since, n));
                for socket in futures::future::join_all(opening).await {
                    open.push(socket?);
                }
            }
            tokio::time::sleep(idle).await;
            rss.push(rss_kib(pid)?);
        }
        let opened_in = started.elapsed();
        drop(open);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(pid)?;
        // Signed: at small counts the allocator may hand back more than the sockets take.
        let per_socket = |from: u64, to: u64, count: usize| {
            (i128::from(to) - i128::from(from)) * 1024 / i128::try_from(count.max(1)).unwrap_or(1)
        };
        Ok(json!({
            "mode": "idle",
            "sockets": sockets,
            "users": users.len(),
            "source_ips": self.source_ips,
            "opened_in_s": opened_in.as_secs_f64(),
            "rss_kib": { "before": before, "first_half": rss[0], "all": rss[1], "after_close": after },
            "bytes_per_socket_second_half": per_socket(rss[0], rss[1], sockets - half),
            "bytes_per_socket_all": per_socket(before, rss[1], sockets),
        }))
    }

    async fn fanout(
        &self,
        secret: &str,
        members: usize,
        messages: usize,
        interval: Duration,
    ) -> Result<Value> {
        let prefix = format!("fanout{}", std::process::id());
        let (users, room_id) = self.users_in_a_room(secret, &prefix, members + 1).await?;
        let sender = &users[0];
        let since = sender.sync(None, None, 0).await["next_batch"].as_str().context("next_batch")?.to_owned();
        // Each frame's latency: its arrival against the send's start, both on this clock.
        let clock = Instant::now();
        let (latencies, mut arrived) = mpsc::unbounded_channel::<Duration>();
        for (n, member) in users[1..].iter().enumerate() {
            let mut socket = self.open(member, &since, n).await?;
            let latencies = latencies.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else { continue };
                    let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    let sent_at = frame["content"]["sent_at_us"].as_u64();
                    if let (Some("new_message"), Some(sent_at)) = (frame["type"].as_str(), sent_at) {
                        let latency = clock.elapsed().saturating_sub(Duration::from_micros(sent_at));
                        if latencies.send(latency).is_err() {
                            return;
                        }
                    }
                }
            });
        }
        drop(latencies);
        let started = Instant::now();
        let mut send_latencies = Vec::with_capacity(messages);
        for i in 0..messages {
            let sent_at = clock.elapsed();
            let body = json!({ "msgtype": "m.text", "body": format!("fanout {i}"), "sent_at_us": sent_at.as_micros() as u64 });
            let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/fanout{i}", enc(&room_id));
            let response = sender.put(&path, body).await;
            ensure!(response.status == 200, "sending: {}", response.body);
            send_latencies.push(clock.elapsed() - sent_at);
            tokio::time::sleep(interval).await;
        }
        let expected = members * messages;
        let mut frames = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while frames.len() < expected {
            match tokio::time::timeout_at(deadline, arrived.recv()).await {
                Ok(Some(latency)) => frames.push(latency),
                _ => break,
            }
        }
        if frames.is_empty() {
            bail!("no socket received any message");
        }
        Ok(json!({
            "mode": "fanout",
            "members": members,
            "messages": messages,
            "interval_ms": interval.as_millis() as u64,
            "frames_expected": expected,
            "frames_received": frames.len(),
            "run_s": started.elapsed().as_secs_f64(),
            "frame_latency_ms": percentiles(&mut frames),
            "send_latency_ms": percentiles(&mut send_latencies),
        }))
    }
}

/// p50, p99 and max, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> Value {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    json!({ "p50": at(0.50), "p99": at(0.99), "max": at(1.0) })
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    line.split_whitespace().nth(1).context("VmRSS value")?.parse().context("VmRSS value")
}

/// Fails early, saying what to do, when process `pid`'s open-file limit cannot hold `sockets`.
fn check_open_files(pid: &str, sockets: usize) -> Result<()> {
    let limits =
        std::fs::read_to_string(format!("/proc/{pid}/limits")).context("reading open-file limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < sockets + 64
    {
        bail!(
            "process {pid} may open {soft} files, too few for {sockets} sockets: raise it (`ulimit -n {}` \
             in the shells that start the server and ws-bench, as root for a hard limit this high)",
            sockets + 1024
        );
    }
    Ok(())
}
