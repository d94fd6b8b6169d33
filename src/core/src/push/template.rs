//! Evaluating the server-default rules once per event instead of once per recipient.
//!
//! Most users never change a push rule, and their rule sets differ only in the few rules that
//! name the user (`.m.rule.invite_for_me`, `.m.rule.is_user_mention`). Matching a thousand
//! separate copies of the same rules is slow mostly because each copy is somewhere else in
//! memory. So the rules of the server-default set that do not depend on the user are matched
//! (by ruma) once per event on a template copy, and only the user's own versions of the
//! dependent rules are matched per recipient; walking the rules in order, the first match wins
//! exactly as in a full evaluation.
//!
//! Which rules depend on the user is found, not assumed: the default sets of two different
//! users are compared rule by rule, and rules whose conditions read the context's display name
//! count as dependent too. A future ruma with other default rules stays correct.

use ruma::{
    OwnedUserId, UserId,
    api::client::push::PushRule,
    push::{AnyPushRule, FlattenedJson, PushCondition, PushConditionRoomCtx, Ruleset},
};

/// The server-default rule set as a template.
#[derive(Debug)]
pub struct Template {
    /// The rules, in evaluation order, of the template user's default set.
    pub(super) rules: Vec<AnyPushRule>,
    /// Whether each rule depends on the user (and is matched per recipient).
    pub(super) dependent: Vec<bool>,
    /// Per dependent rule, the conditions every user's version of it has (empty for the
    /// others): an event failing one of them matches nobody's version (see
    /// [`Template::may_apply`]).
    common: Vec<Vec<PushCondition>>,
    /// The user the template's own rules belong to (nobody real).
    pub(super) user: OwnedUserId,
}

/// The rules of one user's server-default set that depend on the user: `(index in the
/// template, rule)`.
#[derive(Debug)]
pub struct DefaultRules(pub(super) Vec<(usize, AnyPushRule)>);

impl Default for Template {
    fn default() -> Self {
        Template::new()
    }
}

impl Template {
    /// Builds the template from ruma's server-default rules.
    pub fn new() -> Template {
        let user = probe("one");
        let rules: Vec<AnyPushRule> = Ruleset::server_default(&user).into_iter().collect();
        let other: Vec<AnyPushRule> = Ruleset::server_default(&probe("two")).into_iter().collect();
        let dependent: Vec<bool> = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| other.get(i).is_none_or(|o| !same(rule, o)) || reads_display_name(rule))
            .collect();
        let common = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| match other.get(i) {
                Some(o) if dependent[i] => common_conditions(rule, o),
                _ => Vec::new(),
            })
            .collect();
        Template { rules, dependent, common, user }
    }

    /// Whether the dependent rule at `index` may apply to some user with the server-default
    /// rules: it is enabled and `event` passes the conditions all their versions share, matched
    /// on `context` (the template's: those conditions read no user field). A join to a room
    /// of 10 000 members otherwise matched `.m.rule.invite_for_me` for each of them.
    pub(super) async fn may_apply(
        &self,
        index: usize,
        event: &FlattenedJson,
        context: &PushConditionRoomCtx,
    ) -> bool {
        if !self.rules[index].enabled() {
            return false;
        }
        for condition in &self.common[index] {
            if !condition.applies(event, context).await {
                return false;
            }
        }
        true
    }

    /// `user`'s versions of the dependent rules.
    pub fn user_rules(&self, user: &UserId) -> DefaultRules {
        let own = Ruleset::server_default(user).into_iter().enumerate();
        DefaultRules(own.filter(|(i, _)| self.dependent.get(*i).copied().unwrap_or(true)).collect())
    }
}

fn probe(name: &str) -> OwnedUserId {
    OwnedUserId::try_from(format!("@hearth-push-probe-{name}:{name}.invalid")).expect("a valid user ID")
}

/// Whether two rules are the same rule with the same content.
fn same(a: &AnyPushRule, b: &AnyPushRule) -> bool {
    let json = |rule: &AnyPushRule| serde_json::to_value(PushRule::from(rule.clone())).ok();
    std::mem::discriminant(a) == std::mem::discriminant(b) && json(a).is_some() && json(a) == json(b)
}

/// The conditions of `a` that `b` has too, but those reading the display name (which differs
/// between users though the condition does not).
fn common_conditions(a: &AnyPushRule, b: &AnyPushRule) -> Vec<PushCondition> {
    let conditions = |rule: &AnyPushRule| match rule {
        AnyPushRule::Override(r) | AnyPushRule::Underride(r) => r.conditions.clone(),
        _ => Vec::new(),
    };
    let json = |condition: &PushCondition| serde_json::to_value(condition).ok();
    let theirs: Vec<_> = conditions(b).iter().map(json).collect();
    #[allow(deprecated)] // the legacy condition is exactly what is left out
    conditions(a)
        .into_iter()
        .filter(|c| !matches!(c, PushCondition::ContainsDisplayName))
        .filter(|c| json(c).is_some_and(|mine| theirs.contains(&Some(mine))))
        .collect()
}

/// Whether a rule's conditions read the recipient's display name from the room context.
fn reads_display_name(rule: &AnyPushRule) -> bool {
    let conditions = match rule {
        AnyPushRule::Override(r) | AnyPushRule::Underride(r) => &r.conditions,
        _ => return false,
    };
    #[allow(deprecated)] // the legacy condition is exactly what is looked for
    conditions.iter().any(|c| matches!(c, PushCondition::ContainsDisplayName))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rules_naming_the_user_are_kept_per_user() {
        let template = Template::new();
        let own = template.user_rules(ruma::user_id!("@bob:example.org"));
        let ids: Vec<&str> = own.0.iter().map(|(_, rule)| rule.as_ref().rule_id()).collect();
        assert_eq!(ids, [".m.rule.invite_for_me", ".m.rule.is_user_mention"]);
        assert!(template.dependent.iter().filter(|d| !**d).count() > 10, "most rules are shared");
    }

    #[tokio::test]
    async fn an_invite_for_nobody_in_particular_is_screened_out_for_a_join_only() {
        let template = Template::new();
        let invite_for_me =
            template.rules.iter().position(|r| r.as_ref().rule_id() == ".m.rule.invite_for_me");
        let index = invite_for_me.expect("the rule");
        let context = ruma::push::PushConditionRoomCtx::new(
            ruma::owned_room_id!("!room:example.org"),
            2u32.into(),
            template.user.clone(),
            String::new(),
        );
        let member = |membership: &str| {
            let event = serde_json::json!({
                "type": "m.room.member", "sender": "@a:example.org", "state_key": "@b:example.org",
                "content": { "membership": membership },
            });
            FlattenedJson::from_raw(&ruma::serde::Raw::new(&event).expect("JSON"))
        };
        assert!(!template.may_apply(index, &member("join"), &context).await);
        assert!(template.may_apply(index, &member("invite"), &context).await, "an invite names someone");
    }
}
