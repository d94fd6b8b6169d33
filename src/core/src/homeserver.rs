//! The [`Homeserver`] handle: everything one server instance shares, cheap to clone and passed
//! explicitly (no globals), so several homeservers can run in one test process.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use anyhow::Context;
use ruma::{ServerName, signatures::Ed25519KeyPair};

use crate::{
    Config,
    accounts::{password::PasswordHashers, token_cache::TokenCache},
    media::Media,
    metrics::Metrics,
    notifier::Notifier,
    push::cache::PushCache,
    rate_limit::RateLimiter,
    room_locks::RoomLocks,
    rooms::{cache::RoomCache, send_queue::SendQueue},
    signing_key,
    storage::Db,
    typing::Typing,
};

/// One homeserver instance: configuration, database pool, signing key and metrics.
#[derive(Clone)]
pub struct Homeserver(Arc<Inner>);

/// A reference to a homeserver that does not keep it alive, for background tasks.
#[derive(Clone)]
pub struct WeakHomeserver(Weak<Inner>);

impl WeakHomeserver {
    /// The homeserver, unless it was dropped.
    pub fn upgrade(&self) -> Option<Homeserver> {
        self.0.upgrade().map(Homeserver)
    }
}

struct Inner {
    config: Config,
    db: Db,
    signing_key: Ed25519KeyPair,
    metrics: Metrics,
    rate_limiter: RateLimiter,
    room_locks: RoomLocks,
    room_cache: RoomCache,
    token_cache: TokenCache,
    send_queue: SendQueue,
    password_hashers: PasswordHashers,
    push_cache: PushCache,
    notifier: Notifier,
    typing: Typing,
    filter_cache: crate::filters::FilterCache,
    media: Media,
    sync_memberships: crate::sync::memberships::MembershipCache,
    presence_cache: crate::presence::PresenceCache,
    ignored_users: crate::user_cache::UserCache<Arc<Vec<ruma::OwnedUserId>>>,
    key_counts: crate::e2ee::keys::KeyCountCache,
    lazy_members: crate::sync::LazyMembers,
    read_positions: crate::user_cache::UserCache<Arc<HashMap<String, crate::receipts::ReadUpto>>>,
    receipt_activity: crate::receipt_activity::ReceiptActivity,
    sync_deliveries: crate::delivery::SyncDeliveries,
    delivery_queue: crate::delivery::DeliveryQueue,
    unread_batch: crate::push::unread_batch::UnreadBatch,
    /// Turns true when the server starts shutting down.
    closing: tokio::sync::watch::Sender<bool>,
    /// Federation's side of joining remote rooms, once installed.
    remote_rooms: std::sync::OnceLock<Box<dyn crate::remote_rooms::RemoteRooms>>,
}

impl Homeserver {
    /// Opens the database (applying migrations) and loads or creates the signing key.
    pub async fn open(config: Config) -> anyhow::Result<Homeserver> {
        std::fs::create_dir_all(&config.storage.data_dir)
            .with_context(|| format!("creating data directory {}", config.storage.data_dir.display()))?;
        let signing_key = signing_key::load_or_generate(&config.storage.data_dir)?;
        let media = Media::open(&config.storage.data_dir)?;
        let db = Db::connect(&config.database).await?;
        db.migrate().await?;
        let metrics = Metrics::new();
        let rate_limiter = RateLimiter::new(&config.rate_limits);
        let notifier = Notifier::start(&db, config.server_name.clone());
        let typing = Typing::start(notifier.room_waker());
        let receipts_at = db.streams().current(crate::storage::streams::Stream::Receipts);
        let receipt_activity = crate::receipt_activity::ReceiptActivity::starting_at(receipts_at);
        let hs = Homeserver(Arc::new(Inner {
            config,
            db,
            signing_key,
            metrics,
            rate_limiter,
            room_locks: RoomLocks::default(),
            room_cache: RoomCache::default(),
            token_cache: TokenCache::default(),
            send_queue: SendQueue::default(),
            password_hashers: PasswordHashers::default(),
            push_cache: PushCache::default(),
            notifier,
            filter_cache: crate::filters::new_cache(),
            sync_memberships: Default::default(),
            presence_cache: Default::default(),
            ignored_users: Default::default(),
            key_counts: Default::default(),
            lazy_members: Default::default(),
            read_positions: Default::default(),
            receipt_activity,
            typing,
            media,
            sync_deliveries: Default::default(),
            delivery_queue: Default::default(),
            unread_batch: Default::default(),
            closing: tokio::sync::watch::Sender::new(false),
            remote_rooms: std::sync::OnceLock::new(),
        }));
        crate::presence::start_offline_sweeper(&hs);
        Ok(hs)
    }

    /// A reference that does not keep this homeserver alive.
    pub fn downgrade(&self) -> WeakHomeserver {
        WeakHomeserver(Arc::downgrade(&self.0))
    }

    /// The configuration this server was started with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The server name that appears in user IDs and room aliases.
    pub fn server_name(&self) -> &ServerName {
        &self.0.config.server_name
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.0.db
    }

    /// The server's ed25519 signing key.
    pub fn signing_key(&self) -> &Ed25519KeyPair {
        &self.0.signing_key
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Per-room write locks.
    pub fn room_locks(&self) -> &RoomLocks {
        &self.0.room_locks
    }

    /// Cached room heads and events.
    pub fn room_cache(&self) -> &RoomCache {
        &self.0.room_cache
    }

    /// The group-commit queue of message sends.
    pub fn send_queue(&self) -> &SendQueue {
        &self.0.send_queue
    }

    /// Recently used sync filters.
    pub fn filter_cache(&self) -> &crate::filters::FilterCache {
        &self.0.filter_cache
    }

    /// The stored presence of syncing users.
    pub fn presence_cache(&self) -> &crate::presence::PresenceCache {
        &self.0.presence_cache
    }

    /// The users each user ignores (`m.ignored_user_list`).
    pub fn ignored_users(&self) -> &crate::user_cache::UserCache<Arc<Vec<ruma::OwnedUserId>>> {
        &self.0.ignored_users
    }

    /// Each device's one-time key counts.
    pub fn key_counts(&self) -> &crate::e2ee::keys::KeyCountCache {
        &self.0.key_counts
    }

    /// Which receipts were written since the server started, and who may see them.
    pub fn receipt_activity(&self) -> &crate::receipt_activity::ReceiptActivity {
        &self.0.receipt_activity
    }

    /// How far each user has read their rooms.
    pub fn read_positions(
        &self,
    ) -> &crate::user_cache::UserCache<Arc<HashMap<String, crate::receipts::ReadUpto>>> {
        &self.0.read_positions
    }

    /// The lazy-loaded members each device has.
    pub fn lazy_members(&self) -> &crate::sync::LazyMembers {
        &self.0.lazy_members
    }

    /// The memberships `/sync` starts from, per user.
    pub fn sync_memberships(&self) -> &crate::sync::memberships::MembershipCache {
        &self.0.sync_memberships
    }

    /// Wakes waiting requests when something concerning their user changed.
    pub fn notifier(&self) -> &Notifier {
        &self.0.notifier
    }

    /// Who is typing in which room.
    pub fn typing(&self) -> &Typing {
        &self.0.typing
    }

    /// The limit on concurrent password hashing.
    pub fn password_hashers(&self) -> &PasswordHashers {
        &self.0.password_hashers
    }

    /// Recently verified access tokens.
    pub fn token_cache(&self) -> &TokenCache {
        &self.0.token_cache
    }

    /// The per-user / per-IP request limiter.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.0.rate_limiter
    }

    /// The media repository.
    pub fn media(&self) -> &Media {
        &self.0.media
    }

    /// What each device's last `/sync` response carried, until acknowledged.
    pub fn sync_deliveries(&self) -> &crate::delivery::SyncDeliveries {
        &self.0.sync_deliveries
    }

    /// Syncs waiting for their unread counts, counted in batches.
    pub fn unread_batch(&self) -> &crate::push::unread_batch::UnreadBatch {
        &self.0.unread_batch
    }

    /// Deliveries waiting to be written in the next batch.
    pub fn delivery_queue(&self) -> &crate::delivery::DeliveryQueue {
        &self.0.delivery_queue
    }

    /// Tells long-lived connections (WebSockets) that the server is shutting down: the
    /// listener's graceful shutdown does not wait for upgraded connections, so they close
    /// themselves when this turns true.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    /// Installs federation's implementation of [`RemoteRooms`](crate::remote_rooms::RemoteRooms)
    /// (once; later calls are ignored). It must not hold this homeserver strongly.
    pub fn set_remote_rooms(&self, remote: Box<dyn crate::remote_rooms::RemoteRooms>) {
        let _ = self.0.remote_rooms.set(remote);
    }

    /// Federation's side of joining remote rooms, when federation runs.
    pub fn remote_rooms(&self) -> Option<&dyn crate::remote_rooms::RemoteRooms> {
        self.0.remote_rooms.get().map(|remote| &**remote)
    }

    /// Starts shutting down: see [`Homeserver::closing`].
    pub fn begin_shutdown(&self) {
        self.0.closing.send_replace(true);
    }

    /// Cached push rule sets and room push contexts.
    pub fn push_cache(&self) -> &PushCache {
        &self.0.push_cache
    }
}
