//! Sync tokens (spec: Client-Server API › Syncing): one position per stream, so an incremental
//! sync resumes every stream exactly where the previous one stopped. The format is
//! `s{events}_{account_data}_{presence}_{receipts}_{to_device}_{device_lists}_{typing}`; its
//! first part is a `/messages` token, so clients may page from a `next_batch` as the spec allows.

use crate::{Error, Homeserver, Result};

/// Positions in every stream `/sync` delivers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncToken {
    /// Room events.
    pub events: i64,
    /// Account data (global and per room).
    pub account_data: i64,
    /// Presence.
    pub presence: i64,
    /// Read receipts.
    pub receipts: i64,
    /// Messages sent to devices.
    pub to_device: i64,
    /// Device list changes.
    pub device_lists: i64,
    /// Typing notifications (counted in memory).
    pub typing: i64,
}

impl SyncToken {
    /// Parses a token; missing trailing parts count as 0 (a bare `/messages` token starts every
    /// other stream from the beginning). `M_INVALID_PARAM` for anything else.
    pub fn parse(token: &str) -> Result<SyncToken> {
        let invalid = || Error::invalid_param("Invalid sync token");
        let mut parts = token.strip_prefix('s').ok_or_else(invalid)?.split('_');
        let mut next = || -> Result<i64> {
            match parts.next() {
                Some(part) => part.parse::<i64>().ok().filter(|p| *p >= 0).ok_or_else(invalid),
                None => Ok(0),
            }
        };
        let token = SyncToken {
            events: next()?,
            account_data: next()?,
            presence: next()?,
            receipts: next()?,
            to_device: next()?,
            device_lists: next()?,
            typing: next()?,
        };
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(token)
    }

    /// The positions below which everything has been written, now. Typing is read first: a
    /// typing change racing the sync is then sent twice rather than lost.
    pub fn current(hs: &Homeserver) -> SyncToken {
        let typing = hs.typing().position();
        let streams = hs.db().streams().all();
        SyncToken {
            events: hs.db().events().upto(),
            account_data: streams.account_data,
            presence: streams.presence,
            receipts: streams.receipts,
            to_device: streams.to_device,
            device_lists: streams.device_lists,
            typing,
        }
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "s{}_{}_{}_{}_{}_{}_{}",
            self.events,
            self.account_data,
            self.presence,
            self.receipts,
            self.to_device,
            self.device_lists,
            self.typing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let token = SyncToken {
            events: 1,
            account_data: 2,
            presence: 3,
            receipts: 4,
            to_device: 5,
            device_lists: 6,
            typing: 1_764_000_000_000,
        };
        assert_eq!(SyncToken::parse(&token.to_string()).expect("parses"), token);
    }

    #[test]
    fn a_messages_token_is_a_sync_token_of_the_event_stream() {
        assert_eq!(
            SyncToken::parse("s42").expect("parses"),
            SyncToken { events: 42, ..SyncToken::default() }
        );
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in ["", "42", "s", "sx_1", "s1_2_3_4_5_6_7_8", "s-1", "s1__2"] {
            assert!(SyncToken::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
