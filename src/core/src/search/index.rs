//! What the search index holds (spec: Client-Server API › Server Side Search › `room_events`):
//! `content.body` of `m.room.message`, `content.name` of `m.room.name`, and `content.topic` (with
//! the `text/plain` bodies of `m.topic`) of `m.room.topic`, as normalised words.
//!
//! Words are split and lower-cased here, for the index and for queries alike, so SQLite and
//! PostgreSQL (whose own parsers split differently: `example.com` is one token to PostgreSQL)
//! match the same things.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{
    Homeserver, Result,
    rooms::Pdu,
    storage::{Conn, search},
};

/// The searchable keys and the event type each is searched in.
pub const KEYS: [(&str, &str); search::INDEXED_TYPES] =
    [("content.body", "m.room.message"), ("content.name", "m.room.name"), ("content.topic", "m.room.topic")];

/// Longest text indexed per event, in bytes: enough for any real message, and a bound on the
/// work one event adds to the send path.
const MAX_INDEXED_BYTES: usize = 16 * 1024;

/// Longest word indexed, in bytes: longer runs are no words anyone searches for, and PostgreSQL
/// refuses them (a lexeme holds at most 2 047 bytes; a B-tree entry of `search_terms` about
/// 2 700), which made a send fail.
const MAX_WORD_BYTES: usize = 256;

/// The lower-cased runs of letters and digits in `text` of at most [`MAX_WORD_BYTES`], in order.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= MAX_WORD_BYTES)
        .map(str::to_lowercase)
        .collect()
}

/// The words to index for an event, space-separated; `None` for events not searched (other
/// types, no string in the searched field, no words).
pub fn indexed_words(kind: &str, content: &RawValue) -> Option<String> {
    let words = event_words(kind, content);
    (!words.is_empty()).then(|| words.join(" "))
}

/// The searchable words of an event, in order; none for events not searched.
pub fn event_words(kind: &str, content: &RawValue) -> Vec<String> {
    searched_text(kind, content).map(|text| words(&text)).unwrap_or_default()
}

/// The text searched in an event (at most [`MAX_INDEXED_BYTES`]); `None` for other types and
/// for content without a string in the searched field.
fn searched_text(kind: &str, content: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Fields<'a> {
        #[serde(borrow, default)]
        body: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        topic: Option<std::borrow::Cow<'a, str>>,
        #[serde(rename = "m.topic", default)]
        topic_block: Option<TopicBlock>,
    }
    #[derive(Deserialize)]
    struct TopicBlock {
        #[serde(rename = "m.text", default)]
        text: Vec<Representation>,
    }
    #[derive(Deserialize)]
    struct Representation {
        body: String,
        mimetype: Option<String>,
    }

    if !KEYS.iter().any(|(_, k)| *k == kind) {
        return None;
    }
    // Fields of the wrong type make the event unsearchable, not the send fail.
    let fields: Fields<'_> = serde_json::from_str(content.get()).ok()?;
    let mut text = match kind {
        "m.room.message" => fields.body?.into_owned(),
        "m.room.name" => fields.name?.into_owned(),
        _ => fields.topic.map(|t| t.into_owned()).unwrap_or_default(),
    };
    if kind == "m.room.topic" {
        let plain = fields.topic_block.into_iter().flat_map(|b| b.text);
        for representation in plain.filter(|r| r.mimetype.as_deref().is_none_or(|m| m == "text/plain")) {
            if representation.body != text {
                text.push(' ');
                text.push_str(&representation.body);
            }
        }
    }
    let mut end = text.len().min(MAX_INDEXED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    Some(text)
}

/// Indexes the searchable events among `events` (`(stream position, event)`), in the caller's
/// transaction.
pub async fn record(hs: &Homeserver, conn: &mut Conn, events: &[(i64, &Pdu)]) -> Result<()> {
    let indexed: Vec<(i64, &Pdu, String, String)> = events
        .iter()
        .filter_map(|(position, pdu)| {
            let kind = pdu.kind.to_string();
            indexed_words(&kind, &pdu.content).map(|words| (*position, *pdu, kind, words))
        })
        .collect();
    let entries: Vec<search::Entry<'_>> = indexed
        .iter()
        .map(|(position, pdu, kind, words)| search::Entry {
            stream_ordering: *position,
            room_id: pdu.room_id.as_str(),
            sender: pdu.sender.as_str(),
            kind,
            words,
        })
        .collect();
    search::insert_many(conn, hs.db().backend(), &entries).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, value::to_raw_value};

    use super::{indexed_words, words};

    fn index(kind: &str, content: serde_json::Value) -> Option<String> {
        indexed_words(kind, &to_raw_value(&content).expect("raw"))
    }

    #[test]
    fn runs_too_long_to_be_words_are_not_indexed() {
        let long = "x".repeat(super::MAX_WORD_BYTES + 1);
        assert_eq!(super::words(&format!("before {long} after")), ["before", "after"]);
    }

    #[test]
    fn words_are_lower_case_runs_of_letters_and_digits() {
        assert_eq!(
            words("Hello, wörld! visit example.com at 10:30"),
            ["hello", "wörld", "visit", "example", "com", "at", "10", "30"]
        );
        assert!(words(" -- ").is_empty());
    }

    #[test]
    fn each_type_is_searched_in_its_own_field() {
        assert_eq!(
            index("m.room.message", json!({ "msgtype": "m.text", "body": "Hi there" })).as_deref(),
            Some("hi there")
        );
        assert_eq!(index("m.room.name", json!({ "name": "Tea Room" })).as_deref(), Some("tea room"));
        assert_eq!(index("m.room.topic", json!({ "topic": "Green tea" })).as_deref(), Some("green tea"));
        assert_eq!(index("m.room.message", json!({ "name": "not searched" })), None);
        assert_eq!(index("m.room.member", json!({ "displayname": "Alice" })), None);
        assert_eq!(index("m.room.message", json!({ "body": 42 })), None);
        assert_eq!(index("m.room.message", json!({ "body": "..." })), None);
    }

    #[test]
    fn topics_include_their_plain_text_representations() {
        let content = json!({
            "topic": "Tea",
            "m.topic": { "m.text": [
                { "body": "Tea" },
                { "mimetype": "text/html", "body": "<b>Html</b>" },
                { "mimetype": "text/plain", "body": "Oolong" },
            ] },
        });
        assert_eq!(index("m.room.topic", content).as_deref(), Some("tea oolong"));
    }

    #[test]
    fn very_long_messages_are_cut_at_a_character_boundary() {
        let body = "é ".repeat(10_000);
        let words = index("m.room.message", json!({ "body": body })).expect("indexed");
        assert!(words.len() <= super::MAX_INDEXED_BYTES);
    }
}
