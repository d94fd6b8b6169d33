//! Gaps inside a room's timeline (spec: Server-Server API › Backfilling and retrieving missing
//! events; Client-Server API › `GET /rooms/{roomId}/messages`). When the last local member of a
//! room leaves, the room's other servers stop sending to this one; a later join goes through
//! one of them (`send_join`), and what was said meanwhile is not fetched at the join (it would
//! follow the join as news: see `remote::history_floor`). Stream positions are global, so that
//! history could not be placed between the leave and the join later on: the join therefore
//! takes its position above a [`BLOCK`] of positions set aside (`WriteTx::reserve_stream_orderings`),
//! recorded in `timeline_gaps`. When a local user pages `/messages` backwards past the part of
//! the block not filled yet, the missing prev events below it are asked for (`/backfill`,
//! through the [`RemoteRooms`] port), checked like any backfilled event and taken into the
//! block downwards from just below the join (`backfill::take_in`), oldest lowest. They are
//! never in flight, so `/sync`, which has read past them, never shows them as new; they raise
//! no notifications and, like all backfilled events, have no state group.
//!
//! [`RemoteRooms`]: crate::remote_rooms::RemoteRooms

use ruma::RoomId;

use super::{
    Pdu,
    backfill::{self, MAX_BATCH, Place},
    timeline::StreamToken,
    visibility::Readable,
};
use crate::{
    Homeserver, Result,
    storage::{WriteTx, backfill as stored_backfill, events, gaps},
};

/// Positions set aside below a join through another server for the history it skipped: more
/// than anyone pages through, and positions are 64 bits.
pub const BLOCK: usize = 1 << 20;
/// How many of a gap's lowest events are looked at for prev events this server lacks.
const EDGE: i64 = 20;

/// What filling a gap came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// Events joined the timeline there.
    Some,
    /// Nothing is missing there any more, or nothing more can come: the gap is closed.
    Closed,
    /// No server answered; the gap stays open for another time.
    Failed,
}

/// Sets a block of positions aside below `join` (a join through another server to a room this
/// server knows, about to be persisted) when some of its prev events are not in the timeline
/// here; returns the block, for [`record`] once the join has its position.
pub(super) async fn reserve(tx: &mut WriteTx, join: &Pdu) -> Result<Option<(i64, i64)>> {
    let prevs: Vec<&str> = join.prev_events.iter().map(|id| id.as_str()).collect();
    let positions = events::positions_of(tx, &prevs).await?;
    if prevs.iter().all(|id| positions.get(*id).is_some_and(Option::is_some)) {
        return Ok(None);
    }
    let lowest = tx.reserve_stream_orderings(BLOCK);
    let size = i64::try_from(BLOCK).expect("the block size fits in 64 bits");
    Ok(Some((lowest, lowest + size - 1)))
}

/// Records the gap below `join`, persisted at `position` above `block` (from [`reserve`]).
pub(super) async fn record(tx: &mut WriteTx, join: &Pdu, position: i64, block: (i64, i64)) -> Result<()> {
    gaps::insert(&mut **tx, &join.room_id, join.event_id.as_str(), position, block).await?;
    Ok(())
}

/// The open gap of `room_id` a page of `/messages` read past backwards — from `from` down to
/// (not including) `below` — and whose unfilled part `readable` may read.
pub async fn crossed(
    hs: &Homeserver,
    room_id: &RoomId,
    readable: &Readable,
    from: StreamToken,
    below: i64,
) -> Result<Option<gaps::Gap>> {
    let gap = gaps::open_crossed(hs.db().pool(), room_id, below, from.0).await?;
    Ok(gap.filter(|gap| readable.contains(gap.next_free)))
}

/// Fetches up to `limit` events of the history missing in `gap` of `room_id` and takes them in.
pub async fn fill(hs: &Homeserver, room_id: &RoomId, gap: &gaps::Gap, limit: usize) -> Result<Filled> {
    let Some(remote) = hs.remote_rooms() else { return Ok(Filled::Failed) };
    let pool = hs.db().pool();
    let mut conn = pool.acquire().await?;
    // The join and what was filled below it so far: the lowest of them name what is missing.
    let lowest =
        events::timeline_page(&mut *conn, room_id, gap.next_free, gap.position + 1, false, EDGE).await?;
    let from = backfill::missing_prevs(&mut conn, room_id, &lowest).await?;
    if from.is_empty() || gap.room_left() == 0 {
        drop(conn);
        close(hs, room_id, gap).await?;
        return Ok(Filled::Closed);
    }
    let joined_via = stored_backfill::get(&mut *conn, room_id).await?.map(|room| room.joined_via);
    let servers = backfill::servers_to_ask(hs, &mut conn, room_id, joined_via).await?;
    drop(conn);
    let pdus = match remote.backfill(room_id, &servers, &from, limit.clamp(1, MAX_BATCH)).await {
        Ok(pdus) => pdus,
        Err(e) => {
            tracing::info!(%room_id, error = %e, "backfilling a gap failed");
            return Ok(Filled::Failed);
        }
    };
    if backfill::take_in(hs, room_id, &pdus, Place::Gap(gap.position)).await? > 0 {
        return Ok(Filled::Some);
    }
    // Nothing new from us; another reader's backfill may have filled the same gap meanwhile.
    match gaps::open_at(pool, room_id, gap.position).await? {
        Some(now) if now.next_free == gap.next_free => {
            close(hs, room_id, gap).await?;
            Ok(Filled::Closed)
        }
        _ => Ok(Filled::Some),
    }
}

/// Hands out the next `n` positions of `gap`'s block, descending (see `backfill::take_in`).
pub(super) async fn take_positions(
    tx: &mut WriteTx,
    room_id: &RoomId,
    gap: &gaps::Gap,
    n: usize,
) -> Result<Vec<i64>> {
    let n = i64::try_from(n.min(gap.room_left())).unwrap_or(0);
    gaps::set_next_free(&mut **tx, room_id, gap.position, gap.next_free - n).await?;
    Ok((0..n).map(|i| gap.next_free - i).collect())
}

async fn close(hs: &Homeserver, room_id: &RoomId, gap: &gaps::Gap) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    gaps::close(&mut *tx, room_id, gap.position).await?;
    tx.commit().await?;
    Ok(())
}
