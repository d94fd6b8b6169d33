//! The federation sender (spec: Server-Server API › Transactions; DESIGN §6): drains the
//! outbox (`hearth_core::storage::outbox`), one worker per destination, in transactions of at
//! most 50 PDUs and 100 EDUs, in outbox order. A transaction is deleted from the outbox only
//! once the destination answered it, so nothing is lost across restarts; a failed one is
//! retried, with exponential backoff, before anything after it.

use std::{collections::HashSet, time::Duration};

use hearth_core::storage::outbox;
use http::StatusCode;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedServerName, OwnedTransactionId,
    api::federation::transactions::send_transaction_message, serde::Raw,
};
use serde_json::value::RawValue;
use tokio::task::JoinSet;

use crate::{FedError, Federation};

/// Most PDUs in one transaction (spec).
pub const MAX_PDUS: usize = 50;
/// Most EDUs in one transaction (spec).
pub const MAX_EDUS: usize = 100;
/// First wait after a failed transaction; doubled after each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Runs the sender until the homeserver begins shutting down: keeps one worker per destination
/// with pending rows, learning of them from the outbox table at start and then from the
/// commits that queue rows (`Db::outbox_signal`).
pub async fn run(fed: Federation) {
    let hs = fed.hs().clone();
    let mut closing = hs.closing();
    let mut workers: JoinSet<OwnedServerName> = JoinSet::new();
    let mut active: HashSet<OwnedServerName> = HashSet::new();
    // Destinations rows were queued for while their worker ran: it may have finished before
    // reading them, so it is started again once it has.
    let mut missed: HashSet<OwnedServerName> = HashSet::new();
    // Rows left from before a restart.
    let mut wanted: Vec<OwnedServerName> = match outbox::destinations(hs.db().pool()).await {
        Ok(names) => names.into_iter().filter_map(|name| OwnedServerName::try_from(name).ok()).collect(),
        Err(e) => {
            tracing::error!(error = %e, "reading the federation outbox");
            Vec::new()
        }
    };
    loop {
        for destination in wanted.drain(..) {
            if active.insert(destination.clone()) {
                workers.spawn(drain(fed.clone(), destination));
            } else {
                missed.insert(destination);
            }
        }
        tokio::select! {
            () = hs.db().outbox_signal().notified() => {
                let queued = hs.db().outbox_signal().take();
                wanted.extend(queued.into_iter().filter_map(|name| OwnedServerName::try_from(name).ok()));
            }
            Some(done) = workers.join_next() => {
                // A worker found its queue empty.
                if let Ok(destination) = done {
                    active.remove(&destination);
                    if missed.remove(&destination) {
                        wanted.push(destination);
                    }
                }
            }
            _ = closing.wait_for(|closing| *closing) => break,
        }
    }
    workers.shutdown().await;
}

/// Sends `destination`'s pending rows until none is left; returns the destination. One
/// transaction is in flight at a time (spec), but the rows the last one delivered are deleted
/// while the next is sent: the deletion is a write, which waits its turn for the writer, and
/// the destination need not wait for it.
async fn drain(fed: Federation, destination: OwnedServerName) -> OwnedServerName {
    let mut backoff = FIRST_BACKOFF;
    // Rows up to `sent` were answered; up to `deleted`, deleted too.
    let (mut sent, mut deleted) = (0, 0);
    loop {
        let (next, delete) =
            tokio::join!(send_next(&fed, &destination, sent), delete_upto(&fed, &destination, sent, deleted));
        deleted = delete;
        match next {
            Ok(Some(last_id)) => {
                sent = last_id;
                backoff = FIRST_BACKOFF;
            }
            Ok(None) if deleted == sent => return destination,
            // Nothing left to send, but the deletion failed: try it again before leaving, or
            // the next worker would send those rows again.
            Ok(None) => tokio::time::sleep(backoff).await,
            Err(e) => {
                tracing::warn!(%destination, error = %e, retry_in = ?backoff, "federation transaction failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Deletes `destination`'s rows up to `sent` unless already done (up to `deleted`); the outbox
/// ID deleted up to afterwards.
async fn delete_upto(fed: &Federation, destination: &OwnedServerName, sent: i64, deleted: i64) -> i64 {
    if sent == deleted {
        return deleted;
    }
    match outbox::delete_delivered(fed.hs().db(), destination.as_str(), sent).await {
        Ok(()) => sent,
        Err(error) => {
            tracing::warn!(%destination, %error, "deleting delivered rows from the federation outbox");
            deleted
        }
    }
}

/// Sends one transaction of the oldest pending rows after outbox ID `after` (outbox IDs are
/// positive); the last outbox ID it covered, `None` when there were none.
async fn send_next(
    fed: &Federation,
    destination: &OwnedServerName,
    after: i64,
) -> anyhow::Result<Option<i64>> {
    let pool = fed.hs().db().pool();
    let limit = i64::try_from(MAX_PDUS + MAX_EDUS)?;
    let pending = outbox::pending_after(pool, destination.as_str(), after, limit).await?;
    let Some(first) = pending.first() else { return Ok(None) };
    let first_id = first.outbox_id;
    let (mut pdus, mut edus, mut last_id) = (Vec::new(), Vec::new(), first_id);
    for item in &pending {
        match (&item.pdu, &item.edu) {
            (Some(pdu), _) if pdus.len() < MAX_PDUS => pdus.push(RawValue::from_string(pdu.clone())?),
            (None, Some(edu)) if edus.len() < MAX_EDUS => {
                edus.push(Raw::from_json(RawValue::from_string(edu.clone())?))
            }
            // A PDU whose event is gone has nothing to send.
            (None, None) => {}
            _ => break,
        }
        last_id = item.outbox_id;
    }
    if pdus.is_empty() && edus.is_empty() {
        return Ok(Some(last_id));
    }
    // Outbox IDs are never reused, so the same ID always means the same transaction (which the
    // destination answers once), also when retried after a restart.
    let txn_id = OwnedTransactionId::from(format!("{first_id}-{last_id}"));
    let mut request = send_transaction_message::v1::Request::new(
        txn_id,
        fed.hs().server_name().to_owned(),
        MilliSecondsSinceUnixEpoch::now(),
    );
    let (pdu_count, edu_count) = (pdus.len(), edus.len());
    request.pdus = pdus;
    request.edus = edus;
    let sending = std::time::Instant::now();
    let sent = fed.client().send(destination, request).await;
    tracing::debug!(
        %destination, pdus = pdu_count, edus = edu_count,
        elapsed_ms = sending.elapsed().as_secs_f64() * 1e3, "federation transaction sent"
    );
    match sent {
        Ok(response) => {
            for (event_id, result) in response.pdus {
                if let Err(error) = result {
                    tracing::info!(%destination, %event_id, %error, "a PDU we sent was not accepted");
                }
            }
        }
        Err(e) if worth_retrying(&e) => return Err(e.into()),
        // Sending it again would be refused again: drop it rather than block the queue.
        Err(e) => tracing::warn!(%destination, error = %e, "a destination refused a transaction; dropped"),
    }
    Ok(Some(last_id))
}

/// Unreachable, 5xx, rate-limited, or not (yet) able to check our signature: try again later.
fn worth_retrying(e: &FedError) -> bool {
    e.is_transport()
        || e.status().is_some_and(|status| {
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS
        })
}
