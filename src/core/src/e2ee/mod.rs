//! End-to-end encryption on the server side (spec: Client-Server API › End-to-End Encryption):
//! the server never sees plaintext; it stores devices' public keys and hands them to other
//! devices, tracks whose device lists changed, keeps cross-signing keys and signatures, and
//! holds encrypted room key backups.

pub mod backup;
pub mod cross_signing;
pub mod device_lists;
mod device_updates;
pub mod keys;
pub mod signatures;
mod signed_json;
