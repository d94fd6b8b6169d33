//! Push rule sets (spec: Client-Server API › Push Rules, Push Rules: API). A user's rule set is
//! their global `m.push_rules` account data, `{"global": ruleset}`, so `/sync` delivers every
//! change like any other account data; a user who never changed a rule has the server-default
//! set. The rule matching itself is ruma's.
//!
//! Evaluation reads users' rules from a cache ([`user_rules_for`]); reads through the API go to
//! the database. Edits are read-modify-write cycles in one transaction that first takes its
//! account data stream position, which serialises concurrent edits of the stream: no edit is
//! lost.

use std::{collections::HashMap, sync::Arc};

use http::StatusCode;
use ruma::{
    OwnedUserId, UserId,
    api::error::ErrorKind,
    push::{Action, AnyPushRule, InsertPushRuleError, NewPushRule, RemovePushRuleError, RuleKind, Ruleset},
};
use serde::Deserialize;
use serde_json::json;

use super::{source::Source, template::DefaultRules};
use crate::{
    Error, Homeserver, Result,
    storage::{
        account_data::{self, GLOBAL},
        streams::{self, Stream},
    },
};

/// The account data type holding a user's push rules.
pub const PUSH_RULES: &str = "m.push_rules";

#[derive(Deserialize)]
struct Stored {
    global: Ruleset,
}

/// Parses stored `m.push_rules` content, bringing its server-default rules up to date (keeping
/// the user's `enabled` and `actions` for them). Unreadable content falls back to the defaults.
fn parse_stored(user: &UserId, content: &str) -> Ruleset {
    match serde_json::from_str::<Stored>(content) {
        Ok(Stored { mut global }) => {
            global.update_with_server_default(Ruleset::server_default(user));
            global
        }
        Err(e) => {
            tracing::warn!(%user, error = %e, "unreadable m.push_rules account data; using the defaults");
            Ruleset::server_default(user)
        }
    }
}

/// A user's rules as evaluation needs them.
#[derive(Clone, Debug)]
pub enum UserRules {
    /// The server-default set, of which only the rules naming the user are kept: the others
    /// are matched once per event on the template (see [`super::template`]).
    Default(Arc<DefaultRules>),
    /// A set the user changed, matched in full.
    Custom(Arc<Ruleset>),
}

/// `user`'s rule set, as stored (`GET /pushrules`).
pub async fn ruleset(hs: &Homeserver, user: &UserId) -> Result<Ruleset> {
    let stored = account_data::get(hs.db().pool(), user, GLOBAL, PUSH_RULES).await?;
    Ok(match stored {
        Some(content) => parse_stored(user, &content),
        None => Ruleset::server_default(user),
    })
}

/// The rules of `users`, in the same order: from the cache, the rest read in one query.
pub(crate) async fn user_rules_for(
    hs: &Homeserver,
    db: &mut Source<'_>,
    users: &[&UserId],
) -> Result<Vec<UserRules>> {
    let (cached, generation) = hs.push_cache().rulesets(users);
    let missing: Vec<&str> =
        users.iter().zip(&cached).filter(|(_, c)| c.is_none()).map(|(u, _)| u.as_str()).collect();
    if missing.is_empty() {
        return Ok(cached.into_iter().flatten().collect());
    }
    let stored: HashMap<String, String> =
        account_data::get_global_many(db.conn().await?, &missing, PUSH_RULES).await?.into_iter().collect();
    let template = hs.push_cache().template();
    let mut loaded: Vec<(OwnedUserId, UserRules)> = Vec::with_capacity(missing.len());
    let mut all = Vec::with_capacity(users.len());
    for (user, cached) in users.iter().zip(cached) {
        let rules = match cached {
            Some(rules) => rules,
            None => {
                let rules = match stored.get(user.as_str()) {
                    Some(content) => UserRules::Custom(Arc::new(parse_stored(user, content))),
                    None => UserRules::Default(Arc::new(template.user_rules(user))),
                };
                loaded.push(((*user).to_owned(), rules.clone()));
                rules
            }
        };
        all.push(rules);
    }
    hs.push_cache().put_rulesets(loaded, generation);
    Ok(all)
}

/// One rule of `user`'s rule set; 404 `M_NOT_FOUND` when there is none.
pub async fn rule(hs: &Homeserver, user: &UserId, kind: &RuleKind, rule_id: &str) -> Result<AnyPushRule> {
    let ruleset = ruleset(hs, user).await?;
    ruleset.get(kind.clone(), rule_id).map(|rule| rule.to_owned()).ok_or_else(rule_not_found)
}

/// Creates or replaces a user-defined rule (`PUT /pushrules/global/{kind}/{ruleId}`), placed
/// relative to another user-defined rule by `before` / `after`.
pub async fn set_rule(
    hs: &Homeserver,
    user: &UserId,
    rule: NewPushRule,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<()> {
    edit(hs, user, |ruleset| {
        ruleset.insert(rule, after, before).map_err(|e| match e {
            InsertPushRuleError::ServerDefaultRuleId => {
                Error::invalid_param("Rule IDs starting with a dot are reserved for server-default rules")
            }
            InsertPushRuleError::InvalidRuleId => {
                Error::invalid_param("Rule IDs may not contain slashes or backslashes")
            }
            InsertPushRuleError::RelativeToServerDefaultRule => {
                Error::invalid_param("Rules cannot be placed relative to server-default rules")
            }
            InsertPushRuleError::UnknownRuleId => Error::bad_request("The before/after rule was not found"),
            InsertPushRuleError::BeforeHigherThanAfter => {
                Error::bad_request("The before rule has a higher priority than the after rule")
            }
            other => Error::bad_request(other.to_string()),
        })
    })
    .await
}

/// Deletes a user-defined rule; 404 for unknown rules, 400 `M_INVALID_PARAM` for
/// server-default ones.
pub async fn delete_rule(hs: &Homeserver, user: &UserId, kind: &RuleKind, rule_id: &str) -> Result<()> {
    edit(hs, user, |ruleset| {
        ruleset.remove(kind.clone(), rule_id).map_err(|e| match e {
            RemovePushRuleError::ServerDefault => {
                Error::invalid_param("Server-default rules cannot be deleted")
            }
            _ => rule_not_found(),
        })
    })
    .await
}

/// Enables or disables a rule (server-default rules included).
pub async fn set_enabled(
    hs: &Homeserver,
    user: &UserId,
    kind: &RuleKind,
    rule_id: &str,
    enabled: bool,
) -> Result<()> {
    edit(hs, user, |ruleset| {
        ruleset.set_enabled(kind.clone(), rule_id, enabled).map_err(|_| rule_not_found())
    })
    .await
}

/// Replaces a rule's actions (server-default rules included).
pub async fn set_actions(
    hs: &Homeserver,
    user: &UserId,
    kind: &RuleKind,
    rule_id: &str,
    actions: Vec<Action>,
) -> Result<()> {
    edit(hs, user, |ruleset| {
        ruleset.set_actions(kind.clone(), rule_id, actions).map_err(|_| rule_not_found())
    })
    .await
}

fn rule_not_found() -> Error {
    Error::matrix(StatusCode::NOT_FOUND, ErrorKind::NotFound, "The push rule was not found")
}

/// Applies `change` to `user`'s stored rule set and writes it back as account data, then
/// forgets the cached copy and wakes the user's syncs.
async fn edit(hs: &Homeserver, user: &UserId, change: impl FnOnce(&mut Ruleset) -> Result<()>) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let position = streams::next_position(&mut tx, Stream::AccountData).await?;
    let stored = account_data::get(&mut *tx, user, GLOBAL, PUSH_RULES).await?;
    let mut ruleset = match stored {
        Some(content) => parse_stored(user, &content),
        None => Ruleset::server_default(user),
    };
    change(&mut ruleset)?;
    let content = json!({ "global": ruleset }).to_string();
    account_data::put(&mut tx, user, GLOBAL, PUSH_RULES, &content, position).await?;
    tx.commit().await?;
    hs.push_cache().forget_ruleset(user);
    // The new m.push_rules account data is news for the user's waiting syncs.
    hs.notifier().wake_users([user]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use ruma::{push::PredefinedOverrideRuleId, user_id};

    use super::*;

    #[test]
    fn stored_rules_keep_user_rules_and_the_state_of_default_rules() {
        let user = user_id!("@alice:example.org");
        let mut ruleset = Ruleset::server_default(user);
        ruleset
            .set_enabled(RuleKind::Override, PredefinedOverrideRuleId::Master.as_str(), true)
            .expect("master exists");
        let room_rule = NewPushRule::Room(ruma::push::NewSimplePushRule::new(
            "!quiet:example.org".try_into().expect("room ID"),
            vec![],
        ));
        ruleset.insert(room_rule, None, None).expect("insert");
        let stored = json!({ "global": ruleset }).to_string();

        let parsed = parse_stored(user, &stored);

        assert!(parsed.get(RuleKind::Override, ".m.rule.master").expect("master").enabled());
        assert!(parsed.get(RuleKind::Room, "!quiet:example.org").is_some());
        assert!(parsed.get(RuleKind::Override, ".m.rule.is_user_mention").is_some());
    }

    #[test]
    fn unreadable_stored_rules_fall_back_to_the_defaults() {
        let user = user_id!("@alice:example.org");
        let parsed = parse_stored(user, "{\"global\": 3}");
        assert!(parsed.get(RuleKind::Underride, ".m.rule.message").is_some());
    }
}
