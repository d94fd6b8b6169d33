//! `fed-bench`: federation benchmarks (docs/BENCHMARKS.md › Federation). Starts real Hearth
//! servers in this process (the complement harness: loopback ports, federation over TLS with the
//! test CA, a fresh database each) and drives them over HTTP. Never run by the tests; build with
//! `--release`.
//!
//! - `join --members N`: a room on the first server whose state holds N joined members (made
//!   through core calls, not timed); a user of the second server joins it over federation
//!   (`make_join`/`send_join` with the whole state and auth chain). Reports the join's latency,
//!   and the time from the join's start until the joiner's `/sync` (lazy-loading members, as
//!   Element does) shows a message a member sent as soon as the join returned.
//! - `stream --rate R --seconds S --servers K`: one room shared by K servers; senders on the
//!   first post R messages/s for S seconds; a user on each other server long-polls `/sync` and
//!   times every message from the start of its send to its arrival in that sync (one clock:
//!   everything runs in this process). Reports p50/p99/max per server, lost, duplicated and
//!   gapped (`limited`) counts, and whether every server saw the same order, with the CPU this
//!   process (servers, clients and tool) spent from the first send until the stragglers' wait
//!   ended, per 1 000 messages, and what the rest of the machine spent meanwhile.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use futures::{StreamExt, stream};
use hearth_complement_tests::{Backend, Client, Cluster, TestServer, client::enc};
use hearth_core::{accounts::registration, rooms::membership};
use serde_json::{Map, Value, json};
use tokio::{sync::Semaphore, task::JoinSet, time::MissedTickBehavior};

const PASSWORD: &str = "fed-bench-password";
/// Core calls in flight while building the big room.
const SETUP_CONCURRENCY: usize = 16;

#[derive(Parser)]
#[command(about = "Federation benchmarks over in-process Hearth servers")]
struct Args {
    /// Run the servers on PostgreSQL (an admin URL such as postgres://postgres@127.0.0.1/postgres)
    /// instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Join a big room from another server; time to the first message.
    Join {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
    },
    /// Messages at a steady rate to a room shared with other servers; send → remote sync.
    Stream {
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Servers sharing the room (the sending one included).
        #[arg(long, default_value_t = 3)]
        servers: usize,
        /// Users on the first server sharing the sending.
        #[arg(long, default_value_t = 10)]
        senders: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Off unless asked for: e.g. `RUST_LOG=hearth_federation=debug` for the servers' timings.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let backend = match args.postgres {
        Some(url) => Backend::Postgres(url),
        None => Backend::Sqlite,
    };
    let report = match args.mode {
        Mode::Join { members } => join(backend, members).await?,
        Mode::Stream { rate, seconds, servers, senders } => {
            ensure!(servers >= 2 && senders >= 1 && rate >= 1, "need 2+ servers, 1+ senders, rate 1+");
            stream_messages(backend, rate, Duration::from_secs(seconds), servers, senders).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// See the module doc, `join`.
async fn join(backend: Backend, members: usize) -> Result<Value> {
    let servers = Cluster::start(backend, 2).await;
    let (resident, joiner) = (&servers[0], &servers[1]);
    let alice = resident.client().register("alice", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;

    let setup = Instant::now();
    fill_room(resident, &room_id, members).await?;
    let setup = setup.elapsed();

    let bob = joiner.client().register("bob", PASSWORD).await;
    let lazy = json!({ "room": { "state": { "lazy_load_members": true }, "timeline": { "limit": 10 } } });
    let since = next_batch(&bob.sync(None, Some(&lazy), 0).await)?;

    let started = Instant::now();
    let path =
        format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room_id), enc(&resident.server_name));
    let joined = bob.post(&path, json!({})).await;
    let join_latency = started.elapsed();
    ensure!(joined.status == 200, "the join failed: {}", joined.text);
    let sent = send(&alice, &room_id, "first", json!({})).await?;

    let mut since = since;
    let mut first_sync_bytes = None;
    let seen = loop {
        let response = bob.get(&sync_path(&since, &lazy, 10_000)).await;
        ensure!(response.status == 200, "sync failed: {}", response.text);
        first_sync_bytes.get_or_insert(response.bytes.len());
        let events = response.body["rooms"]["join"][&room_id]["timeline"]["events"].as_array().cloned();
        if events.unwrap_or_default().iter().any(|event| event["event_id"] == sent.as_str()) {
            break started.elapsed();
        }
        ensure!(started.elapsed() < Duration::from_secs(300), "the message never arrived");
        since = next_batch(&response.body)?;
    };
    Ok(json!({
        "mode": "join",
        "members": members + 1,
        "setup_s": secs(setup),
        "join_ms": ms(join_latency),
        "first_message_ms": ms(seen),
        "first_sync_bytes": first_sync_bytes,
    }))
}

/// Registers `count` users on `server` and joins them to `room_id`, through core calls.
async fn fill_room(server: &TestServer, room_id: &str, count: usize) -> Result<()> {
    let hs = server.federation().hs().clone();
    let room_id: ruma::OwnedRoomId = room_id.try_into().context("room ID")?;
    let results: Vec<Result<()>> = stream::iter(0..count)
        .map(|n| {
            let (hs, room_id) = (hs.clone(), room_id.clone());
            async move {
                let account = registration::NewAccount {
                    username: Some(format!("member{n}")),
                    inhibit_login: true,
                    ..Default::default()
                };
                let user = registration::register(&hs, account).await?.user_id;
                membership::join(&hs, &user, &room_id, Map::new(), &[]).await?;
                Ok(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// One received message: sequence number, send→seen latency.
type Arrival = (u64, Duration);

/// See the module doc, `stream`.
async fn stream_messages(
    backend: Backend,
    rate: u32,
    duration: Duration,
    servers: usize,
    senders: usize,
) -> Result<Value> {
    let cluster = Cluster::start(backend, servers).await;
    let origin = &cluster[0];
    let alice = origin.client().register("alice", PASSWORD).await;
    let room_id = alice.create_room(json!({ "preset": "public_chat" })).await;
    let mut senders_clients = vec![alice.clone()];
    for n in 1..senders {
        let sender = origin.client().register(&format!("sender{n}"), PASSWORD).await;
        sender
            .post(&format!("/_matrix/client/v3/rooms/{}/join", enc(&room_id)), json!({}))
            .await
            .expect_status(200);
        senders_clients.push(sender);
    }
    let mut readers = Vec::new();
    for server in &cluster[1..] {
        let reader = server.client().register("reader", PASSWORD).await;
        let path =
            format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room_id), enc(&origin.server_name));
        reader.post(&path, json!({})).await.expect_status(200);
        readers.push((server.server_name.clone(), reader));
    }
    // Every reader must see the senders joined before the clock starts.
    let filter =
        json!({ "room": { "rooms": [room_id], "timeline": { "limit": 1000 } }, "presence": { "types": [] } });
    let mut positions = Vec::new();
    for (_, reader) in &readers {
        positions.push(wait_for_members(reader, &room_id, senders + 2, &filter).await?);
    }

    let clock = Instant::now();
    let cpu = CpuSample::now();
    let total = rate as u64 * duration.as_secs();
    let done = Arc::new(tokio::sync::Notify::new());
    let mut receiving = JoinSet::new();
    for ((name, reader), since) in readers.into_iter().zip(positions) {
        let (room_id, filter, done) = (room_id.clone(), filter.clone(), done.clone());
        receiving.spawn(async move {
            let arrivals = receive(&reader, &room_id, &filter, since, clock, total, done).await;
            (name, arrivals)
        });
    }

    let sending = Instant::now();
    let failed = send_at_rate(&senders_clients, &room_id, rate, total, clock).await;
    let send_seconds = sending.elapsed().as_secs_f64();
    // Stragglers get ten seconds after the last send.
    tokio::time::sleep(Duration::from_secs(10)).await;
    done.notify_waiters();
    let cpu = cpu.report(total);

    let mut per_server = Map::new();
    let mut orders = Vec::new();
    while let Some(joined) = receiving.join_next().await {
        let (name, arrivals) = joined.context("a reader panicked")?;
        let arrivals = arrivals?;
        orders.push(arrivals.0.iter().map(|(seq, _)| *seq).collect::<Vec<_>>());
        per_server.insert(name, summarise(arrivals, total));
    }
    // Concurrent sends commit in any order, but every server must agree on the room's order.
    let same_order = orders.windows(2).all(|pair| pair[0] == pair[1]);
    Ok(json!({
        "mode": "stream",
        "servers": servers,
        "rate": rate,
        "messages": total,
        "send_failures": failed,
        "achieved_rate": (total as f64 / send_seconds).round(),
        "receivers": per_server,
        "same_order_everywhere": same_order,
        "cpu": cpu,
    }))
}

/// Posts `total` messages spread over `senders` at `rate` per second; a send that outlasts its
/// slot does not hold the next one back (up to 512 in flight). The number of failed sends.
async fn send_at_rate(senders: &[Client], room_id: &str, rate: u32, total: u64, clock: Instant) -> u64 {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(Semaphore::new(512));
    let mut sends = JoinSet::new();
    for seq in 0..total {
        ticker.tick().await;
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let sender = senders[seq as usize % senders.len()].clone();
        let room_id = room_id.to_owned();
        sends.spawn(async move {
            let sent_us = clock.elapsed().as_micros() as u64;
            let outcome =
                send(&sender, &room_id, &format!("m{seq}"), json!({ "seq": seq, "sent_us": sent_us })).await;
            drop(permit);
            outcome.is_err()
        });
    }
    let mut failed = 0;
    while let Some(outcome) = sends.join_next().await {
        failed += u64::from(outcome.unwrap_or(true));
    }
    failed
}

/// Long-polls `reader`'s sync until `total` messages arrived or `done` fires.
async fn receive(
    reader: &Client,
    room_id: &str,
    filter: &Value,
    mut since: String,
    clock: Instant,
    total: u64,
    done: Arc<tokio::sync::Notify>,
) -> Result<(Vec<Arrival>, u64)> {
    let mut arrivals = Vec::with_capacity(total as usize);
    let mut gaps = 0;
    let finished = done.notified();
    tokio::pin!(finished);
    while (arrivals.len() as u64) < total {
        let path = sync_path(&since, filter, 5_000);
        let response = tokio::select! {
            response = reader.get(&path) => response,
            () = &mut finished => break,
        };
        let now = clock.elapsed();
        ensure!(response.status == 200, "sync failed: {}", response.text);
        let timeline = &response.body["rooms"]["join"][room_id]["timeline"];
        gaps += u64::from(timeline["limited"] == true);
        for event in timeline["events"].as_array().into_iter().flatten() {
            let content = &event["content"];
            if let (Some(seq), Some(sent_us)) = (content["seq"].as_u64(), content["sent_us"].as_u64()) {
                arrivals.push((seq, now.saturating_sub(Duration::from_micros(sent_us))));
            }
        }
        since = next_batch(&response.body)?;
    }
    Ok((arrivals, gaps))
}

/// Latency percentiles and delivery counts of one receiver.
fn summarise((arrivals, gaps): (Vec<Arrival>, u64), total: u64) -> Value {
    let mut seen = HashSet::new();
    let duplicates = arrivals.iter().filter(|(seq, _)| !seen.insert(*seq)).count();
    let mut latencies: Vec<Duration> = arrivals.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    let at = |q: f64| {
        latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
    };
    json!({
        "received": seen.len(),
        "lost": total.saturating_sub(seen.len() as u64),
        "duplicates": duplicates,
        "limited_gaps": gaps,
        "p50_ms": at(0.50).map(|d| ms(*d)),
        "p99_ms": at(0.99).map(|d| ms(*d)),
        "max_ms": latencies.last().map(|d| ms(*d)),
    })
}

/// Syncs until `room_id` has `count` joined members for `reader`; the position after that.
async fn wait_for_members(reader: &Client, room_id: &str, count: usize, filter: &Value) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/_matrix/client/v3/rooms/{}/joined_members", enc(room_id));
        let joined = reader.get(&path).await;
        if joined.body["joined"].as_object().is_some_and(|members| members.len() >= count) {
            return next_batch(&reader.sync(None, Some(filter), 0).await);
        }
        ensure!(Instant::now() < deadline, "the members never all arrived: {}", joined.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `PUT /rooms/{room}/send/m.room.message/{txn}` with a text body and extra content; the event ID.
async fn send(client: &Client, room_id: &str, body: &str, extra: Value) -> Result<String> {
    let mut content = json!({ "msgtype": "m.text", "body": body });
    if let (Some(content), Value::Object(extra)) = (content.as_object_mut(), extra) {
        content.extend(extra);
    }
    let txn = format!("{body}-{}", rand::random::<u64>());
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", enc(room_id));
    let response = client.put(&path, content).await;
    ensure!(response.status == 200, "send failed: {}", response.text);
    response.body["event_id"].as_str().map(str::to_owned).context("event_id")
}

/// CPU time so far: this process's and the whole machine's busy time, in seconds.
struct CpuSample {
    own_s: f64,
    machine_busy_s: f64,
}

/// utime + stime of a `/proc/<pid>/stat` line, in clock ticks: fields 14 and 15, counted after
/// the command name's closing parenthesis (the name may hold spaces). Every field is kept, the
/// state letter too: dropping the fields that are not numbers shifted these by one, and this
/// read stime + cutime (so `own_cpu_s` before 2026-11-29's third session was system time only).
fn process_ticks(stat: &str) -> f64 {
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let tick = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    tick(11) + tick(12)
}

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on every Linux this runs on).
const TICKS_PER_S: f64 = 100.0;

impl CpuSample {
    fn now() -> CpuSample {
        let own = process_ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
        // `/proc/stat`'s `cpu` line: user nice system idle iowait irq softirq steal.
        let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<f64> = machine
            .lines()
            .next()
            .map(|line| line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect())
            .unwrap_or_default();
        let busy =
            ticks.iter().take(8).enumerate().filter(|(n, _)| *n != 3 && *n != 4).map(|(_, t)| t).sum::<f64>();
        CpuSample { own_s: own / TICKS_PER_S, machine_busy_s: busy / TICKS_PER_S }
    }

    /// This process's CPU since `self` (total and per 1 000 of `messages`) and the other
    /// processes' (builds beside the run make its latencies incomparable).
    fn report(self, messages: u64) -> Value {
        let now = CpuSample::now();
        let own = now.own_s - self.own_s;
        let other = (now.machine_busy_s - self.machine_busy_s - own).max(0.0);
        let round = |s: f64| (s * 100.0).round() / 100.0;
        json!({
            "own_cpu_s": round(own),
            "own_cpu_s_per_1000_messages": round(own * 1000.0 / messages.max(1) as f64),
            "other_cpu_s": round(other),
        })
    }
}

fn sync_path(since: &str, filter: &Value, timeout_ms: u64) -> String {
    format!(
        "/_matrix/client/v3/sync?timeout={timeout_ms}&since={}&filter={}",
        enc(since),
        enc(&filter.to_string())
    )
}

fn next_batch(sync: &Value) -> Result<String> {
    sync["next_batch"].as_str().map(str::to_owned).context("next_batch")
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

fn secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_ticks_are_user_plus_system_time() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
        let stat = "42 (fed bench) S 1 42 42 0 -1 4194560 100 0 0 0 1189 491 7 3 20 0";
        assert_eq!(super::process_ticks(stat), 1189.0 + 491.0);
    }
}
