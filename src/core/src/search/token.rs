//! `next_batch` tokens of `POST /search`: opaque to clients, they hold the order they were made
//! for, the newest stream position the first page looked at (so later pages see the same
//! events: nothing sent meanwhile slips in and shifts them) and the last result returned.
//! Format: `r` (rank) or `t` (recent), then `{upto}_{score as hex bits}_{stream position}`.

use crate::{Error, Result};

/// The order results come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Best match first (then newest first).
    Rank,
    /// Newest first.
    Recent,
}

/// The last result a previous page ended with; the next page starts after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    /// Its score (used by [`Order::Rank`]).
    pub score: f64,
    /// Its stream position.
    pub stream_ordering: i64,
}

/// Where the next page of a search starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Token {
    /// The order the pages are in.
    pub order: Order,
    /// The newest stream position searched.
    pub upto: i64,
    /// The last result returned so far.
    pub after: Cursor,
}

impl Token {
    /// Parses a token made by [`Token::to_string`]; `M_INVALID_PARAM` otherwise.
    pub fn parse(token: &str) -> Result<Token> {
        let invalid = || Error::invalid_param("Invalid next_batch token");
        let order = match token.get(..1) {
            Some("r") => Order::Rank,
            Some("t") => Order::Recent,
            _ => return Err(invalid()),
        };
        let mut parts = token[1..].split('_');
        let mut next = || parts.next().ok_or_else(invalid);
        let upto = next()?.parse().map_err(|_| invalid())?;
        let score = f64::from_bits(u64::from_str_radix(next()?, 16).map_err(|_| invalid())?);
        let stream_ordering = next()?.parse().map_err(|_| invalid())?;
        if parts.next().is_some() || !score.is_finite() {
            return Err(invalid());
        }
        Ok(Token { order, upto, after: Cursor { score, stream_ordering } })
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let order = match self.order {
            Order::Rank => 'r',
            Order::Recent => 't',
        };
        write!(f, "{order}{}_{:x}_{}", self.upto, self.after.score.to_bits(), self.after.stream_ordering)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, Order, Token};

    #[test]
    fn tokens_survive_the_round_trip_exactly() {
        for order in [Order::Rank, Order::Recent] {
            let token = Token { order, upto: 42, after: Cursor { score: 0.1 + 0.2, stream_ordering: 7 } };
            assert_eq!(Token::parse(&token.to_string()).expect("parses"), token);
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "x1_0_1", "r1_0", "r1_0_1_2", "rA_0_1", "r1_zz_1", "r1_7ff8000000000000_1", "é"] {
            assert!(Token::parse(bad).is_err(), "{bad}");
        }
    }
}
