//! Signed JSON objects of end-to-end encryption (spec: Appendices › Signing JSON): device keys
//! and cross-signing keys, whose `signatures` map user IDs to key IDs to signatures over the
//! canonical JSON of the object without `signatures` and `unsigned`.

use std::collections::BTreeMap;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, SigningKeyAlgorithm, UserId,
    serde::Base64,
    signatures::{to_canonical_json_string_for_signing, verify_canonical_json_bytes},
};

use crate::{Error, Result};

/// A stored key object (canonical JSON written by Hearth itself): a parse failure is a bug.
pub(crate) fn parse_stored(json: &str) -> Result<CanonicalJsonObject> {
    serde_json::from_str(json).map_err(|e| Error::Internal(anyhow::anyhow!("stored key JSON: {e}")))
}

/// The object's signatures by `user`: key ID to signature.
pub(crate) fn signatures_by(object: &CanonicalJsonObject, user: &UserId) -> BTreeMap<String, String> {
    let Some(CanonicalJsonValue::Object(all)) = object.get("signatures") else { return BTreeMap::new() };
    let Some(CanonicalJsonValue::Object(mine)) = all.get(user.as_str()) else { return BTreeMap::new() };
    mine.iter()
        .filter_map(|(key_id, signature)| match signature {
            CanonicalJsonValue::String(s) => Some((key_id.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// Adds (or replaces) the signature of `user`'s key `key_id`.
pub(crate) fn add_signature(object: &mut CanonicalJsonObject, user: &str, key_id: &str, signature: &str) {
    let all =
        object.entry("signatures".to_owned()).or_insert_with(|| CanonicalJsonValue::Object(BTreeMap::new()));
    if !matches!(all, CanonicalJsonValue::Object(_)) {
        *all = CanonicalJsonValue::Object(BTreeMap::new());
    }
    if let CanonicalJsonValue::Object(all) = all {
        let mine = all.entry(user.to_owned()).or_insert_with(|| CanonicalJsonValue::Object(BTreeMap::new()));
        if let CanonicalJsonValue::Object(mine) = mine {
            mine.insert(key_id.to_owned(), CanonicalJsonValue::String(signature.to_owned()));
        }
    }
}

/// Whether two objects are the same but for their `signatures` and `unsigned`: what a
/// signature covers.
pub(crate) fn same_signed_content(a: &CanonicalJsonObject, b: &CanonicalJsonObject) -> bool {
    fn content(o: &CanonicalJsonObject) -> BTreeMap<&String, &CanonicalJsonValue> {
        o.iter().filter(|(k, _)| *k != "signatures" && *k != "unsigned").collect()
    }
    content(a) == content(b)
}

/// The public key the object lists under `key_id` (`keys.<key_id>`), such as a device's
/// `ed25519:DEVICEID` key.
pub(crate) fn public_key(object: &CanonicalJsonObject, key_id: &str) -> Option<String> {
    match object.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) => match keys.get(key_id) {
            Some(CanonicalJsonValue::String(key)) => Some(key.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `signature` is a valid ed25519 signature of the object by `public_key` (both
/// unpadded base64). Anything malformed is simply not valid.
pub(crate) fn verify(object: &CanonicalJsonObject, public_key: &str, signature: &str) -> bool {
    let parsed: (Result<Base64, _>, Result<Base64, _>) =
        (Base64::parse(public_key), Base64::parse(signature));
    let (Ok(key), Ok(signature)) = parsed else { return false };
    let Ok(canonical) = to_canonical_json_string_for_signing(object) else { return false };
    verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        key.as_bytes(),
        signature.as_bytes(),
        canonical.as_bytes(),
    )
    .is_ok()
}

/// Whether `user` signed the object with the ed25519 key `public_key` (key ID
/// `ed25519:<public_key>`, as cross-signing keys are named).
pub(crate) fn signed_by_key(object: &CanonicalJsonObject, user: &UserId, public_key: &str) -> bool {
    signatures_by(object, user)
        .get(&format!("ed25519:{public_key}"))
        .is_some_and(|signature| verify(object, public_key, signature))
}

#[cfg(test)]
mod tests {
    use ruma::signatures::Ed25519KeyPair;

    use super::*;

    /// A key pair whose key ID is `ed25519:<public key>`, as cross-signing keys are named.
    fn key_pair() -> (Ed25519KeyPair, String) {
        let document = Ed25519KeyPair::generate();
        let probe = Ed25519KeyPair::from_der(&document, "x".to_owned()).expect("key");
        let public: Base64 = Base64::new(probe.public_key().to_vec());
        let public = public.encode();
        (Ed25519KeyPair::from_der(&document, public.clone()).expect("key"), public)
    }

    fn object(json: serde_json::Value) -> CanonicalJsonObject {
        match CanonicalJsonValue::try_from(json).expect("canonical") {
            CanonicalJsonValue::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_content() {
        let user: &UserId = "@alice:x".try_into().expect("user");
        let (pair, public) = key_pair();
        let (_, other_public) = key_pair();
        let mut signed = object(serde_json::json!({ "user_id": "@alice:x", "usage": ["master"] }));
        ruma::signatures::sign_json(user.as_str(), &pair, &mut signed).expect("sign");
        assert!(signed_by_key(&signed, user, &public));
        assert!(!signed_by_key(&signed, user, &other_public), "another key");

        let mut tampered = signed.clone();
        tampered.insert("usage".to_owned(), CanonicalJsonValue::Array(Vec::new()));
        assert!(!signed_by_key(&tampered, user, &public), "other content");
        let mut with_unsigned = signed.clone();
        with_unsigned.insert("unsigned".to_owned(), CanonicalJsonValue::Object(BTreeMap::new()));
        assert!(signed_by_key(&with_unsigned, user, &public), "unsigned is not covered");
        assert!(!verify(&signed, "not base64!", "AAAA"));
    }

    #[test]
    fn content_comparison_ignores_signatures_and_unsigned() {
        let a = object(serde_json::json!({ "k": 1, "signatures": { "@a:x": { "ed25519:A": "s" } } }));
        let b = object(serde_json::json!({ "k": 1, "unsigned": { "x": 2 } }));
        let c = object(serde_json::json!({ "k": 2 }));
        assert!(same_signed_content(&a, &b));
        assert!(!same_signed_content(&a, &c));
    }

    #[test]
    fn added_signatures_join_the_existing_ones() {
        let user: &UserId = "@a:x".try_into().expect("user");
        let mut o = object(serde_json::json!({ "signatures": { "@a:x": { "ed25519:A": "s1" } } }));
        add_signature(&mut o, "@a:x", "ed25519:B", "s2");
        add_signature(&mut o, "@b:x", "ed25519:C", "s3");
        assert_eq!(signatures_by(&o, user).len(), 2);
        assert_eq!(
            signatures_by(&o, "@b:x".try_into().expect("user")).get("ed25519:C").map(String::as_str),
            Some("s3")
        );
        let mut bare = object(serde_json::json!({}));
        add_signature(&mut bare, "@a:x", "ed25519:A", "s");
        assert_eq!(public_key(&bare, "ed25519:A"), None);
        assert_eq!(signatures_by(&bare, user).len(), 1);
    }
}
