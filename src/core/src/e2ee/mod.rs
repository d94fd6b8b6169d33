//! End-to-end encryption on the server side (spec: Client-Server API › End-to-End Encryption):
//! the server never sees plaintext; it stores devices' public keys and hands them to other
//! devices.

pub mod keys;
