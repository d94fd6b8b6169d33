//! Turning core's events into the raw JSON ruma responses carry.

use hearth_core::rooms::Pdu;
use ruma::serde::Raw;
use serde_json::{Value, value::to_raw_value};

/// Wraps a JSON value as a `Raw<T>` without re-checking its shape.
pub fn raw<T>(value: &Value) -> Raw<T> {
    Raw::from_json(to_raw_value(value).expect("a JSON value serialises"))
}

/// A PDU in the client format, as `Raw<T>`.
pub fn client_event<T>(pdu: &Pdu) -> Raw<T> {
    raw(&pdu.to_client_value())
}
