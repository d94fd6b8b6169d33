//! `PUT /_matrix/federation/v1/send/{txnId}` (spec: Server-Server API › Transactions): the
//! PDUs and EDUs another server pushes to us. Each PDU gets its own result; a transaction
//! retried with the same ID gets the first answer again without being processed twice.

use hearth_core::{Error, Result, storage::federation_txns, time::now_ms};
use ruma::{ServerName, api::federation::transactions::send_transaction_message::v1};

use crate::{
    FedResult, FedRuma, Federation, edu, ingest,
    sender::{MAX_EDUS, MAX_PDUS},
};

/// `PUT /_matrix/federation/v1/send/{txnId}`
/// <https://spec.matrix.org/latest/server-server-api/#put_matrixfederationv1sendtxnid>
pub async fn send(fed: Federation, req: FedRuma<v1::Request>) -> FedResult<v1::Response> {
    Ok(process(&fed, &req.origin, req.body).await?)
}

/// Processes a transaction `origin` sent (as authenticated by its X-Matrix signature).
pub async fn process(fed: &Federation, origin: &ServerName, request: v1::Request) -> Result<v1::Response> {
    if request.origin != origin {
        return Err(Error::forbidden("The transaction's origin is not the server that signed the request"));
    }
    if request.pdus.len() > MAX_PDUS || request.edus.len() > MAX_EDUS {
        return Err(Error::bad_json(format!(
            "A transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    let pool = fed.hs().db().pool();
    let txn_id = request.transaction_id.as_str();
    if let Some(answered) = federation_txns::get(pool, origin.as_str(), txn_id).await? {
        let pdus = serde_json::from_str::<ResponseBody>(&answered)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored transaction answer: {e}")))?;
        return Ok(v1::Response::new(pdus.into_results()));
    }
    let started = std::time::Instant::now();
    let mut results = std::collections::BTreeMap::new();
    // Without EDUs, the write that stores the last PDUs records the answer with them; EDUs are
    // taken in after the PDUs, each on its own, and the answer after them.
    let answering = request.edus.is_empty().then_some(txn_id);
    let (pdu_results, recorded) = ingest::transaction_pdus(fed, origin, &request.pdus, answering).await;
    for (event_id, result) in pdu_results {
        if let Err(error) = &result {
            tracing::info!(%origin, %event_id, %error, "received PDU not accepted");
        }
        results.insert(event_id, result);
    }
    for edu in &request.edus {
        if let Ok(edu) = edu.deserialize_as::<serde_json::Value>() {
            edu::receive(fed, origin, &edu).await;
        }
    }
    let ingested = started.elapsed();
    if !recorded {
        let answer = serde_json::to_string(&ResponseBody::from_results(&results))
            .map_err(|e| Error::Internal(e.into()))?;
        federation_txns::insert(fed.hs().db(), origin.as_str(), txn_id, &answer, now_ms()).await?;
    }
    tracing::debug!(
        %origin, pdus = request.pdus.len(), edus = request.edus.len(),
        ingest_ms = ingested.as_secs_f64() * 1e3, elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "federation transaction received"
    );
    Ok(v1::Response::new(results))
}

/// The stored answer for PDU `results` in order (a later result for the same event wins, as
/// in the answer sent); `None` if it cannot be rendered.
pub(crate) fn answer_json(results: impl Iterator<Item = ingest::PduResult>) -> Option<String> {
    let results: std::collections::BTreeMap<_, _> = results.collect();
    serde_json::to_string(&ResponseBody::from_results(&results)).ok()
}

/// The per-PDU results as stored: event ID → error, absent for success.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResponseBody(std::collections::BTreeMap<ruma::OwnedEventId, Option<String>>);

impl ResponseBody {
    fn from_results(
        results: &std::collections::BTreeMap<ruma::OwnedEventId, Result<(), String>>,
    ) -> ResponseBody {
        ResponseBody(results.iter().map(|(id, result)| (id.clone(), result.clone().err())).collect())
    }

    fn into_results(self) -> std::collections::BTreeMap<ruma::OwnedEventId, Result<(), String>> {
        self.0.into_iter().map(|(id, error)| (id, error.map_or(Ok(()), Err))).collect()
    }
}
