//! User ID localparts for new accounts (spec: Appendices › User Identifiers): lower-case
//! `a-z 0-9 . _ = - / +`, and the whole ID at most 255 bytes.

use http::StatusCode;
use rand::{Rng, distributions::Alphanumeric};
use ruma::{OwnedUserId, ServerName, UserId, api::error::ErrorKind};

use crate::{Error, Result};

fn invalid(message: impl Into<String>) -> Error {
    Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::InvalidUsername, message)
}

/// The user ID a requested username maps to: lower-cased, validated for new registrations.
pub fn user_id_for_new_account(username: &str, server_name: &ServerName) -> Result<OwnedUserId> {
    let localpart = username.to_lowercase();
    if localpart.is_empty() {
        return Err(invalid("The username must not be empty"));
    }
    if let Some(bad) = localpart.chars().find(|c| !is_allowed(*c)) {
        return Err(invalid(format!(
            "The username may contain only a-z, 0-9, '.', '_', '=', '-', '/' and '+', not {bad:?}"
        )));
    }
    let user_id = format!("@{localpart}:{server_name}");
    if user_id.len() > 255 {
        return Err(invalid("The user ID must be at most 255 bytes long"));
    }
    UserId::parse(user_id).map_err(|e| invalid(format!("Invalid user ID: {e}")))
}

/// Resolves what a user typed at login (full ID, localpart, any case) to a local user ID.
/// Returns `None` for IDs of other servers or unparseable input.
pub fn user_id_for_login(input: &str, server_name: &ServerName) -> Option<OwnedUserId> {
    let full = if input.starts_with('@') { input.to_owned() } else { format!("@{input}:{server_name}") };
    let user_id = UserId::parse(full.to_lowercase()).ok()?;
    (user_id.server_name() == server_name).then_some(user_id)
}

/// A random localpart for registrations that did not ask for one.
pub fn random() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect()
}

fn is_allowed(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' | '+')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> &'static ServerName {
        ruma::server_name!("example.org")
    }

    #[test]
    fn usernames_are_lower_cased() {
        let id = user_id_for_new_account("Alice-1", server()).expect("valid");
        assert_eq!(id.as_str(), "@alice-1:example.org");
    }

    #[test]
    fn forbidden_characters_are_rejected() {
        for bad in [
            "a!", "a\"", "a:", "a?", "a\\", "a@", "a[", "a]", "a{", "a|", "a}", "a£", "aé", "a\n", "a'", "",
            "a b",
        ] {
            assert!(user_id_for_new_account(bad, server()).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn unusual_but_allowed_endings_are_accepted() {
        for good in ["a.", "a_", "a=", "a-", "a/", "a3", "a+b"] {
            assert!(user_id_for_new_account(good, server()).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn overlong_ids_are_rejected() {
        assert!(user_id_for_new_account(&"a".repeat(250), server()).is_err());
    }

    #[test]
    fn login_accepts_full_ids_localparts_and_any_case() {
        let want = Some(UserId::parse("@bob:example.org").expect("id"));
        assert_eq!(user_id_for_login("@bob:example.org", server()), want);
        assert_eq!(user_id_for_login("bob", server()), want);
        assert_eq!(user_id_for_login("BoB", server()), want);
        assert_eq!(user_id_for_login("@bob:elsewhere.org", server()), None);
    }
}
