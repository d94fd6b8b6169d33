//! The text of a full-text query, in each engine's syntax: FTS5's query language on SQLite, a
//! `tsquery` on PostgreSQL. Both say the same thing: every query word (as the indexed words it
//! stands for), one token of each filter group, none of the excluded tokens.
//!
//! The filter tokens (room, sender, type: see [`room_token`] and its siblings) live in SQLite's
//! `meta` column; PostgreSQL keeps them in the same `tsvector` as the words, behind a `~` that no
//! word carries (words are letters and digits), so no word or prefix of one can match them.

use sha2::{Digest, Sha256};

use super::{Backend, WordMatch};

/// What a branch of a search must match.
#[derive(Debug, Default)]
pub(super) struct Match<'a> {
    /// Every one of these words.
    pub words: &'a [WordMatch],
    /// At least one token of each group.
    pub all_of: Vec<Vec<String>>,
    /// None of these tokens.
    pub none_of: Vec<String>,
}

impl Match<'_> {
    /// The query text for `backend`.
    pub fn text(&self, backend: Backend) -> String {
        let syntax = Syntax::of(backend);
        let words: Vec<String> = self
            .words
            .iter()
            .map(|word| match word {
                WordMatch::Terms(terms) => syntax.any(terms.iter().map(|t| syntax.word(t))),
                WordMatch::Prefix(prefix) => syntax.prefix(prefix),
            })
            .collect();
        let mut text = syntax.words(&words.join(syntax.and));
        for group in &self.all_of {
            text.push_str(syntax.and);
            text.push_str(&syntax.meta(&syntax.any(group.iter().map(|t| syntax.token(t)))));
        }
        if !self.none_of.is_empty() {
            text.push_str(syntax.not);
            text.push_str(&syntax.meta(&syntax.any(self.none_of.iter().map(|t| syntax.token(t)))));
        }
        text
    }
}

/// One engine's query syntax.
struct Syntax {
    backend: Backend,
    and: &'static str,
    or: &'static str,
    not: &'static str,
}

impl Syntax {
    fn of(backend: Backend) -> Syntax {
        match backend {
            Backend::Sqlite => Syntax { backend, and: " AND ", or: " OR ", not: " NOT " },
            Backend::Postgres => Syntax { backend, and: " & ", or: " | ", not: " & !" },
        }
    }

    /// An indexed word, matched exactly. Words hold letters and digits only: no query syntax.
    fn word(&self, word: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("\"{word}\""),
            Backend::Postgres => format!("'{word}'"),
        }
    }

    /// Every indexed word that begins with `prefix`.
    fn prefix(&self, prefix: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("\"{prefix}\"*"),
            Backend::Postgres => format!("'{prefix}':*"),
        }
    }

    /// A filter token (letters and digits).
    fn token(&self, token: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("\"{token}\""),
            Backend::Postgres => format!("'~{token}'"),
        }
    }

    /// Any one of `parts`, parenthesised.
    fn any(&self, parts: impl Iterator<Item = String>) -> String {
        format!("({})", parts.collect::<Vec<_>>().join(self.or))
    }

    /// `expression` over the words only.
    fn words(&self, expression: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("words : ({expression})"),
            Backend::Postgres => format!("({expression})"),
        }
    }

    /// `expression` over the filter tokens only.
    fn meta(&self, expression: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("meta : {expression}"),
            Backend::Postgres => expression.to_owned(),
        }
    }
}

/// The filter tokens of an event, space-separated, as indexed (PostgreSQL's with their `~`).
pub(super) fn filter_tokens(backend: Backend, room_id: &str, sender: &str, kind: &str) -> String {
    let tokens = [room_token(room_id), sender_token(sender), type_token(kind)];
    match backend {
        Backend::Sqlite => tokens.join(" "),
        Backend::Postgres => tokens.iter().map(|t| format!("~{t}")).collect::<Vec<_>>().join(" "),
    }
}

/// The token of a room: a hash, since room IDs are not FTS tokens. 128 bits leave no practical
/// chance that two rooms share one.
pub(super) fn room_token(room_id: &str) -> String {
    format!("r{}", hash(room_id))
}

/// The token of a sender.
pub(super) fn sender_token(sender: &str) -> String {
    format!("s{}", hash(sender))
}

/// The token of an event type: its letters and digits.
pub(super) fn type_token(kind: &str) -> String {
    let letters: String = kind.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("t{}", letters.to_ascii_lowercase())
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::{Backend, Match, WordMatch, room_token, type_token};

    #[test]
    fn filter_tokens_are_plain_fts_tokens() {
        assert_eq!(type_token("m.room.message"), "tmroommessage");
        let token = room_token("!abc:example.org");
        assert_eq!(token.len(), 33);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(token, room_token("!abd:example.org"));
    }

    #[test]
    fn both_engines_get_the_same_query() {
        let words = [WordMatch::Terms(vec!["tea".into(), "teapot".into()]), WordMatch::Prefix("b".into())];
        let query =
            Match { words: &words, all_of: vec![vec!["r1".into(), "r2".into()]], none_of: vec!["s1".into()] };
        assert_eq!(
            query.text(Backend::Sqlite),
            "words : ((\"tea\" OR \"teapot\") AND \"b\"*) AND meta : (\"r1\" OR \"r2\") NOT meta : (\"s1\")"
        );
        assert_eq!(
            query.text(Backend::Postgres),
            "(('tea' | 'teapot') & 'b':*) & ('~r1' | '~r2') & !('~s1')"
        );
    }
}
