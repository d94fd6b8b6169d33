//! Matching room events against a `RoomEventFilter` (spec: Client-Server API › Filtering):
//! `types` / `not_types` (with `*` wildcards), `senders` / `not_senders`, `contains_url`.
//! `rooms` / `not_rooms` do not apply to reading one room's history, and `lazy_load_members`
//! shapes the returned state, not the events.

use ruma::api::client::filter::{RoomEventFilter, UrlFilter};
use serde_json::Value;

use super::Pdu;

/// Whether `pdu` passes `filter`.
pub fn matches(filter: &RoomEventFilter, pdu: &Pdu) -> bool {
    let kind = pdu.kind.to_string();
    if filter.not_types.iter().any(|pattern| glob(pattern, &kind)) {
        return false;
    }
    if let Some(types) = &filter.types
        && !types.iter().any(|pattern| glob(pattern, &kind))
    {
        return false;
    }
    if filter.not_senders.contains(&pdu.sender) {
        return false;
    }
    if let Some(senders) = &filter.senders
        && !senders.contains(&pdu.sender)
    {
        return false;
    }
    match filter.url_filter {
        Some(wanted) => has_url(pdu) == (wanted == UrlFilter::EventsWithUrl),
        None => true,
    }
}

/// Whether `filter` can drop any event (so pages may need more rows than their limit).
pub fn drops_events(filter: &RoomEventFilter) -> bool {
    !filter.not_types.is_empty()
        || filter.types.is_some()
        || !filter.not_senders.is_empty()
        || filter.senders.is_some()
        || filter.url_filter.is_some()
}

fn has_url(pdu: &Pdu) -> bool {
    pdu.content_value().get("url").is_some_and(Value::is_string)
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(glob("m.room.message", "m.room.message"));
        assert!(!glob("m.room.message", "m.room.messages"));
        assert!(glob("m.room.*", "m.room.member"));
        assert!(glob("*", "anything"));
        assert!(glob("m.*.member", "m.room.member"));
        assert!(!glob("m.*.member", "m.room.name"));
        assert!(glob("*.member", "m.room.member"));
        assert!(!glob("m.room.*", "m.call.invite"));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
    }
}
