//! The user directory (spec: Client-Server API › User Directory,
//! `POST /user_directory/search`): the users a searcher may find — those sharing a room with
//! them and those joined to public rooms — matched on their user ID's localpart and display name.
//!
//! Answered by one query over the rooms' current state (`storage::user_directory`) rather than
//! a table of its own kept up to date on membership and profile changes: membership and profile
//! changes are member events already reflected in `current_state`, so there is nothing that
//! could go stale; the cost is a query that grows with the members of the visible rooms.

use ruma::{OwnedMxcUri, OwnedUserId, UserId, api::client::user_directory::search_users::v3::User};

use crate::{Error, Homeserver, Result, storage::user_directory};

/// Most users returned at once.
const MAX_LIMIT: u64 = 100;
/// Most words of a search term used.
const MAX_WORDS: usize = 8;

/// Users `searcher` may find whose localpart or a word of whose display name starts with every
/// word of `term` (case-insensitive), by user ID; and whether more matched than `limit`.
pub async fn search(hs: &Homeserver, searcher: &UserId, term: &str, limit: u64) -> Result<(Vec<User>, bool)> {
    let words: Vec<String> = term.split_whitespace().take(MAX_WORDS).map(str::to_lowercase).collect();
    if words.is_empty() || limit == 0 {
        return Ok((Vec::new(), false));
    }
    let limit = usize::try_from(limit.min(MAX_LIMIT)).unwrap_or(10);
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let mut entries =
        user_directory::search(hs.db().pool(), hs.db().backend(), searcher.as_str(), &words, fetch).await?;
    let limited = entries.len() > limit;
    entries.truncate(limit);
    let users = entries
        .into_iter()
        .map(|entry| {
            let user_id = OwnedUserId::try_from(entry.user_id)
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored user ID: {e}")))?;
            let mut user = User::new(user_id);
            user.display_name = entry.display_name;
            // An avatar that is not an MXC URI is left out rather than served.
            user.avatar_url = entry.avatar_url.filter(|url| url.starts_with("mxc://")).map(OwnedMxcUri::from);
            Ok(user)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((users, limited))
}
