//! Other servers' signing keys: fetched from the server itself (`/_matrix/key/v2/server`), else
//! from the configured notaries, self-signatures checked, cached in memory and in the database,
//! and used to verify signed events, signed JSON and X-Matrix requests (spec: Server-Server API ›
//! Retrieving server keys, Validating hashes and signatures on received events).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hearth_core::{
    Homeserver,
    storage::server_keys::{self, StoredKey},
    time::now_ms,
};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, ServerName,
    api::federation::discovery::{
        ServerSigningKeys, get_remote_server_keys_batch::v2 as notary_batch,
        get_server_keys::v2 as server_keys_api,
    },
    room_version_rules::RoomVersionRules,
    serde::{Base64, Raw},
    signatures::{PublicKeyMap, PublicKeySet, Verified},
};

use crate::{FedClient, KeyError, keys::own_key_id};

/// The longest a fetched key is trusted, whatever its `valid_until_ts` says (spec: "the lesser of
/// this field and 7 days into the future").
const MAX_VALIDITY_MS: i64 = 7 * 24 * 3600 * 1000;

/// After fetching a server's keys, how long before asking it again when a key is still missing
/// (a server that is down or does not have the key is not asked on every request).
const REFETCH_AFTER: Duration = Duration::from_secs(10);

/// Which validity a key must have.
#[derive(Clone, Copy, Debug)]
enum Needed {
    /// Valid now, and not an old key: X-Matrix requests and signed JSON.
    Now,
    /// Valid at this time (ms): events in room versions that enforce key validity.
    At(i64),
    /// Any key with that ID: events in room versions 1 to 4.
    Any,
}

/// Other servers' keys. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing(Arc<Inner>);

struct Inner {
    hs: Homeserver,
    client: FedClient,
    /// Every key we know per server, as stored.
    cache: Mutex<HashMap<OwnedServerName, Arc<Vec<StoredKey>>>>,
    /// When each server's keys were last fetched (or tried).
    fetched: Mutex<HashMap<OwnedServerName, Instant>>,
    /// One fetch per server at a time.
    fetching: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyRing {
    /// A key ring fetching through `client`.
    pub fn new(hs: Homeserver, client: FedClient) -> KeyRing {
        KeyRing(Arc::new(Inner {
            hs,
            client,
            cache: Mutex::default(),
            fetched: Mutex::default(),
            fetching: Mutex::default(),
        }))
    }

    /// The public key `key_id` of `server`, valid now (fetched if need be).
    pub async fn public_key(&self, server: &ServerName, key_id: &str) -> Result<Base64, KeyError> {
        self.key(server, key_id, Needed::Now).await
    }

    /// Checks the signatures of a PDU (and its content hash): fetches every key its signatures
    /// need (the sender's server; for room versions 1 and 2 the event ID's server; for restricted
    /// joins the authorising server), each valid at the event's `origin_server_ts` where the room
    /// version enforces key validity. `Verified::Signatures` means the content hash does not
    /// match: the event must be stored redacted.
    pub async fn verify_event(
        &self,
        object: &CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<Verified, KeyError> {
        let servers =
            ruma::signatures::required_server_signatures_to_verify_event(object, &rules.signatures)?;
        let needed = if rules.enforce_key_validity {
            match object.get("origin_server_ts") {
                Some(CanonicalJsonValue::Integer(ts)) => Needed::At(i64::from(*ts)),
                _ => Needed::Now,
            }
        } else {
            Needed::Any
        };
        let mut keys = PublicKeyMap::new();
        for server in servers {
            keys.insert(server.to_string(), self.keys_for_signatures(object, &server, needed).await?);
        }
        Ok(ruma::signatures::verify_event(&keys, object, rules)?)
    }

    /// Checks `server`'s signature on signed JSON that is not an event (other servers'
    /// signatures on it are not looked at).
    pub async fn verify_json(
        &self,
        server: &ServerName,
        object: &CanonicalJsonObject,
    ) -> Result<(), KeyError> {
        let keys = self.keys_for_signatures(object, server, Needed::Now).await?;
        let only_server = signed_only_by(object, server);
        Ok(ruma::signatures::verify_json(&PublicKeyMap::from([(server.to_string(), keys)]), &only_server)?)
    }

    /// The keys of `server` that its signatures on `object` were made with and that are valid as
    /// `needed`; at least one, else [`KeyError::Unavailable`].
    async fn keys_for_signatures(
        &self,
        object: &CanonicalJsonObject,
        server: &ServerName,
        needed: Needed,
    ) -> Result<PublicKeySet, KeyError> {
        let key_ids: Vec<String> = match object.get("signatures") {
            Some(CanonicalJsonValue::Object(signatures)) => match signatures.get(server.as_str()) {
                Some(CanonicalJsonValue::Object(by_key)) => by_key.keys().cloned().collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut keys = PublicKeySet::new();
        let mut last_error = None;
        for key_id in key_ids.into_iter().filter(|id| id.starts_with("ed25519:")) {
            match self.key(server, &key_id, needed).await {
                Ok(key) => {
                    keys.insert(key_id, key);
                }
                Err(e) => last_error = Some(e),
            }
        }
        if keys.is_empty() {
            return Err(last_error.unwrap_or_else(|| {
                unavailable(server, "*", "the object carries no ed25519 signature of it")
            }));
        }
        Ok(keys)
    }

    /// A key of `server` valid as `needed`, from the cache, else the database, else fetched.
    async fn key(&self, server: &ServerName, key_id: &str, needed: Needed) -> Result<Base64, KeyError> {
        let hs = &self.0.hs;
        if server == hs.server_name() {
            return if key_id == own_key_id(hs) {
                Ok(Base64::new(hs.signing_key().public_key().to_vec()))
            } else {
                Err(unavailable(server, key_id, "not our key"))
            };
        }
        if let Some(key) = usable(&self.known(server).await?, key_id, needed) {
            return Ok(key);
        }
        let lock = self.fetch_lock(server);
        let _one_at_a_time = lock.lock().await;
        // Another request may have fetched meanwhile.
        if let Some(key) = usable(&self.known(server).await?, key_id, needed) {
            return Ok(key);
        }
        let recently = self
            .0
            .fetched
            .lock()
            .ok()
            .and_then(|f| f.get(server).copied())
            .is_some_and(|at| at.elapsed() < REFETCH_AFTER);
        if recently {
            return Err(unavailable(server, key_id, "not published (asked a moment ago)"));
        }
        let fetched = self.fetch(server).await;
        if let Ok(mut times) = self.0.fetched.lock() {
            times.insert(server.to_owned(), Instant::now());
        }
        fetched?;
        usable(&self.known(server).await?, key_id, needed)
            .ok_or_else(|| unavailable(server, key_id, "the server does not publish it (valid at that time)"))
    }

    /// The lock that makes fetches of `server`'s keys take turns.
    fn fetch_lock(&self, server: &ServerName) -> Arc<tokio::sync::Mutex<()>> {
        match self.0.fetching.lock() {
            Ok(mut locks) => {
                locks.retain(|_, lock| Arc::strong_count(lock) > 1);
                locks.entry(server.to_owned()).or_default().clone()
            }
            Err(_) => Arc::default(),
        }
    }

    /// Every key we know of `server`.
    async fn known(&self, server: &ServerName) -> Result<Arc<Vec<StoredKey>>, KeyError> {
        if let Some(keys) = self.0.cache.lock().ok().and_then(|c| c.get(server).cloned()) {
            return Ok(keys);
        }
        let stored = server_keys::get(self.0.hs.db().pool(), server)
            .await
            .map_err(|e| unavailable(server, "*", &format!("database: {e}")))?;
        let stored = Arc::new(stored);
        if let Ok(mut cache) = self.0.cache.lock() {
            cache.insert(server.to_owned(), stored.clone());
        }
        Ok(stored)
    }

    /// Fetches `server`'s keys from the server itself, else from each notary, and stores them.
    async fn fetch(&self, server: &ServerName) -> Result<(), KeyError> {
        let direct = match self.0.client.send(server, server_keys_api::Request::new()).await {
            Ok(response) => checked(server, &response.server_key),
            Err(e) => Err(unavailable(server, "*", &e.to_string())),
        };
        let responses = match direct {
            Ok(response) => vec![response],
            Err(e) => {
                tracing::debug!(%server, error = %e, "fetching keys directly failed; asking notaries");
                let from_notaries = self.fetch_from_notaries(server).await;
                if from_notaries.is_empty() {
                    return Err(e);
                }
                from_notaries
            }
        };
        for (keys, json) in responses {
            self.store(server, &keys, json).await?;
        }
        Ok(())
    }

    async fn fetch_from_notaries(&self, server: &ServerName) -> Vec<(ServerSigningKeys, String)> {
        let notaries = self.0.hs.config().federation.trusted_key_servers.clone();
        for notary in notaries.iter().filter(|n| n.as_str() != server.as_str()) {
            let query = BTreeMap::from([(server.to_owned(), BTreeMap::new())]);
            let response = match self.0.client.send(notary, notary_batch::Request::new(query)).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::debug!(%notary, %server, error = %e, "notary key query failed");
                    continue;
                }
            };
            let mut found = Vec::new();
            for raw in &response.server_keys {
                let Ok((keys, json)) = checked(server, raw) else { continue };
                // The notary vouches for the answer with its own signature.
                let Ok(object) = serde_json::from_str::<CanonicalJsonObject>(&json) else { continue };
                match Box::pin(self.verify_json(notary, &object)).await {
                    Ok(()) => found.push((keys, json)),
                    Err(e) => {
                        tracing::debug!(%notary, %server, error = %e, "notary signature does not verify")
                    }
                }
            }
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    async fn store(
        &self,
        server: &ServerName,
        keys: &ServerSigningKeys,
        json: String,
    ) -> Result<(), KeyError> {
        let now = now_ms();
        let valid_until = capped_validity(i64::from(keys.valid_until_ts.get()), now);
        let current = keys.verify_keys.iter().map(|(id, key)| StoredKey {
            key_id: id.to_string(),
            public_key: key.key.encode(),
            valid_until_ts: valid_until,
            expired_ts: None,
            fetched_ts: now,
            response_json: json.clone(),
        });
        let old = keys.old_verify_keys.iter().map(|(id, key)| StoredKey {
            key_id: id.to_string(),
            public_key: key.key.encode(),
            valid_until_ts: valid_until,
            expired_ts: Some(i64::from(key.expired_ts.get())),
            fetched_ts: now,
            response_json: json.clone(),
        });
        let rows: Vec<StoredKey> = current.chain(old).collect();
        server_keys::upsert(self.0.hs.db().pool(), server, &rows)
            .await
            .map_err(|e| unavailable(server, "*", &format!("database: {e}")))?;
        if let Ok(mut cache) = self.0.cache.lock() {
            cache.remove(server);
        }
        Ok(())
    }

    /// The signed key responses we hold for `server` that are valid until at least
    /// `minimum_valid_until` (fetched if none is), for serving as a notary.
    pub async fn responses_for_notary(&self, server: &ServerName, minimum_valid_until: i64) -> Vec<String> {
        let fresh = |keys: &[StoredKey]| -> Vec<String> {
            let mut responses: Vec<String> = keys
                .iter()
                .filter(|k| k.expired_ts.is_none() && k.valid_until_ts >= minimum_valid_until)
                .map(|k| k.response_json.clone())
                .collect();
            responses.sort();
            responses.dedup();
            responses
        };
        let known = self.known(server).await.map(|k| fresh(&k)).unwrap_or_default();
        if !known.is_empty() {
            return known;
        }
        let lock = self.fetch_lock(server);
        let _one_at_a_time = lock.lock().await;
        if self.fetch(server).await.is_err() {
            return Vec::new();
        }
        self.known(server).await.map(|k| fresh(&k)).unwrap_or_default()
    }
}

/// Parses a key response and checks that it is `server`'s and self-signed with its keys.
fn checked(
    server: &ServerName,
    raw: &Raw<ServerSigningKeys>,
) -> Result<(ServerSigningKeys, String), KeyError> {
    let keys: ServerSigningKeys =
        raw.deserialize().map_err(|e| unavailable(server, "*", &format!("malformed key response: {e}")))?;
    if keys.server_name != server {
        return Err(unavailable(server, "*", &format!("the key response is {}'s", keys.server_name)));
    }
    let object: CanonicalJsonObject = serde_json::from_str(raw.json().get())
        .map_err(|e| unavailable(server, "*", &format!("key response is not canonical JSON: {e}")))?;
    let own: PublicKeySet =
        keys.verify_keys.iter().map(|(id, key)| (id.to_string(), key.key.clone())).collect();
    ruma::signatures::verify_json(
        &PublicKeyMap::from([(server.to_string(), own)]),
        &signed_only_by(&object, server),
    )?;
    Ok((keys, raw.json().get().to_owned()))
}

/// A key's `valid_until_ts` as trusted when fetched at `now`: at most 7 days ahead.
fn capped_validity(valid_until_ts: i64, now: i64) -> i64 {
    valid_until_ts.min(now.saturating_add(MAX_VALIDITY_MS))
}

/// `object` with only `server`'s signatures left.
fn signed_only_by(object: &CanonicalJsonObject, server: &ServerName) -> CanonicalJsonObject {
    let mut copy = object.clone();
    if let Some(CanonicalJsonValue::Object(signatures)) = copy.get_mut("signatures") {
        signatures.retain(|name, _| name == server.as_str());
    }
    copy
}

/// The key `key_id` among `keys` if it is valid as `needed`.
fn usable(keys: &[StoredKey], key_id: &str, needed: Needed) -> Option<Base64> {
    let key = keys.iter().find(|k| k.key_id == key_id)?;
    let valid = match (needed, key.expired_ts) {
        (Needed::Any, _) => true,
        (Needed::Now, None) => key.valid_until_ts > now_ms(),
        (Needed::Now, Some(_)) => false,
        (Needed::At(ts), None) => key.valid_until_ts >= ts,
        (Needed::At(ts), Some(expired)) => ts < expired,
    };
    if valid { Base64::parse(&key.public_key).ok() } else { None }
}

fn unavailable(server: &ServerName, key_id: &str, reason: &str) -> KeyError {
    KeyError::Unavailable { server: server.to_owned(), key_id: key_id.to_owned(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(valid_until_ts: i64, expired_ts: Option<i64>) -> StoredKey {
        StoredKey {
            key_id: "ed25519:a".to_owned(),
            public_key: "AAAA".to_owned(),
            valid_until_ts,
            expired_ts,
            fetched_ts: 0,
            response_json: "{}".to_owned(),
        }
    }

    #[test]
    fn a_current_key_is_usable_until_its_valid_until_ts() {
        let now = now_ms();
        assert!(usable(&[key(now + 60_000, None)], "ed25519:a", Needed::Now).is_some());
        assert!(usable(&[key(now - 1, None)], "ed25519:a", Needed::Now).is_none());
        assert!(usable(&[key(now + 60_000, None)], "ed25519:b", Needed::Now).is_none());
        // An event signed before the key's validity ended still verifies with it.
        assert!(usable(&[key(1_000, None)], "ed25519:a", Needed::At(999)).is_some());
        assert!(usable(&[key(1_000, None)], "ed25519:a", Needed::At(1_001)).is_none());
        assert!(usable(&[key(1_000, None)], "ed25519:a", Needed::Any).is_some());
    }

    #[test]
    fn a_key_is_trusted_for_at_most_seven_days_from_when_it_was_fetched() {
        assert_eq!(capped_validity(1_000, 0), 1_000);
        assert_eq!(capped_validity(i64::MAX, 5), 5 + MAX_VALIDITY_MS);
        assert_eq!(capped_validity(i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn an_old_key_verifies_only_what_was_signed_before_it_expired() {
        let old = [key(i64::MAX, Some(5_000))];
        assert!(usable(&old, "ed25519:a", Needed::At(4_999)).is_some());
        assert!(usable(&old, "ed25519:a", Needed::At(5_000)).is_none());
        assert!(usable(&old, "ed25519:a", Needed::Now).is_none());
    }
}
