//! Push rule evaluation against hand-built rooms: which recipients the spec's default rules and
//! user rules notify, and when they highlight.

use std::sync::Arc;

use ruma::{
    OwnedUserId, RoomVersionId, UInt,
    events::room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource},
    owned_room_id,
    push::{
        Action, FlattenedJson, NewConditionalPushRule, NewPatternedPushRule, NewPushRule, NewSimplePushRule,
        PushCondition, RuleKind, Ruleset, Tweak,
    },
    serde::Raw,
};
use serde_json::{Value, json};

use super::{
    evaluate::{Actions, evaluate},
    room::{LocalMember, RoomContext},
    rules::UserRules,
    template::Template,
};

const ROOM: &str = "!room:example.org";

fn user(name: &str) -> OwnedUserId {
    OwnedUserId::try_from(format!("@{name}:example.org")).expect("user ID")
}

fn member(name: &str, display_name: &str) -> LocalMember {
    LocalMember { user_id: user(name), display_name: display_name.to_owned() }
}

/// A room of `joined` members whose power levels give `@admin` 100 and need 50 for `@room`.
fn room(joined: u64) -> RoomContext {
    let rules = RoomVersionId::V11.rules().expect("v11 rules").authorization;
    let content: RoomPowerLevelsEventContent = serde_json::from_value(json!({
        "users": { "@admin:example.org": 100 },
        "users_default": 0,
        "notifications": { "room": 50 },
    }))
    .expect("power levels");
    let levels =
        RoomPowerLevels::new(RoomPowerLevelsSource::Original(content), &rules, Vec::<OwnedUserId>::new());
    RoomContext::new(
        owned_room_id!("!room:example.org"),
        UInt::new_saturating(joined),
        Vec::new(),
        Some(levels.into()),
    )
}

fn message(sender: &str, content: Value) -> FlattenedJson {
    let event = json!({
        "type": "m.room.message",
        "sender": user(sender),
        "room_id": ROOM,
        "content": content,
    });
    FlattenedJson::from_raw(&Raw::new(&event).expect("raw event"))
}

fn text(body: &str) -> Value {
    json!({ "msgtype": "m.text", "body": body })
}

/// How `rules`, matched in full, notify `recipient` of `event`.
async fn notified(
    room: &RoomContext,
    event: &FlattenedJson,
    recipient: &LocalMember,
    rules: &Ruleset,
) -> Option<Actions> {
    let rules = UserRules::Custom(Arc::new(rules.clone()));
    let outcome = evaluate(room, &Template::new(), event, &[(recipient, &rules)]).await;
    outcome.for_user(&recipient.user_id).cloned()
}

/// How the server-default rules notify `recipient` of `event`: the same whether matched in full
/// or through the template.
async fn notified_by_default(
    room: &RoomContext,
    event: &FlattenedJson,
    recipient: &LocalMember,
) -> Option<Actions> {
    let template = Template::new();
    let in_full = notified(room, event, recipient, &Ruleset::server_default(&recipient.user_id)).await;
    let own = UserRules::Default(Arc::new(template.user_rules(&recipient.user_id)));
    let outcome = evaluate(room, &template, event, &[(recipient, &own)]).await;
    let templated = outcome.for_user(&recipient.user_id).cloned();
    assert_eq!(in_full, templated, "the template changes nothing");
    templated
}

#[tokio::test]
async fn a_plain_message_in_a_group_room_notifies_without_highlight() {
    let bob = member("bob", "Bob");

    let n =
        notified_by_default(&room(5), &message("alice", text("hello all")), &bob).await.expect("notified");

    assert!(!n.highlight);
    assert_eq!(&*n.actions, "[\"notify\"]");
}

#[tokio::test]
async fn a_message_in_a_one_to_one_room_notifies_with_a_sound() {
    let bob = member("bob", "Bob");

    let n = notified_by_default(&room(2), &message("alice", text("hi")), &bob).await.expect("notified");

    assert!(!n.highlight);
    assert!(n.actions.contains("sound"), "{}", n.actions);
}

#[tokio::test]
async fn a_mention_of_the_user_id_highlights() {
    let bob = member("bob", "Bob");
    let content =
        json!({ "msgtype": "m.text", "body": "Bob: look", "m.mentions": { "user_ids": [bob.user_id] } });

    let n = notified_by_default(&room(5), &message("alice", content), &bob).await.expect("notified");

    assert!(n.highlight);
}

#[tokio::test]
async fn a_mention_of_someone_else_only_notifies() {
    let bob = member("bob", "Bob");
    let content =
        json!({ "msgtype": "m.text", "body": "Carol: look", "m.mentions": { "user_ids": [user("carol")] } });

    let n = notified_by_default(&room(5), &message("alice", content), &bob).await.expect("notified");

    assert!(!n.highlight);
}

#[tokio::test]
async fn a_display_name_rule_highlights_a_body_naming_the_user() {
    let bob = member("bob", "Bobby Tables");
    let mut rules = Ruleset::server_default(&bob.user_id);
    #[allow(deprecated)] // the legacy condition some clients still create
    let rule = NewConditionalPushRule::new(
        "display_name".to_owned(),
        vec![PushCondition::ContainsDisplayName],
        vec![Action::Notify, Action::SetTweak(Tweak::Highlight(ruma::push::HighlightTweakValue::Yes))],
    );
    rules.insert(NewPushRule::Override(rule), None, None).expect("insert");
    let room = room(5);

    let named = notified(&room, &message("alice", text("ping bobby tables!")), &bob, &rules).await;
    let other = notified(&room, &message("alice", text("ping bobby")), &bob, &rules).await;

    assert!(named.expect("notified").highlight);
    assert!(!other.expect("notified").highlight);
}

#[tokio::test]
async fn a_keyword_rule_highlights_the_word_but_not_inside_another_word() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    let rule = NewPatternedPushRule::new(
        "cake".to_owned(),
        "cake".to_owned(),
        vec![Action::Notify, Action::SetTweak(Tweak::Highlight(ruma::push::HighlightTweakValue::Yes))],
    );
    rules.insert(NewPushRule::Content(rule), None, None).expect("insert");
    let room = room(5);

    let word = notified(&room, &message("alice", text("Cake is ready")), &bob, &rules).await;
    let inside = notified(&room, &message("alice", text("pancakes are ready")), &bob, &rules).await;

    assert!(word.expect("notified").highlight);
    assert!(!inside.expect("notified").highlight);
}

#[tokio::test]
async fn a_room_rule_without_actions_silences_the_room() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    let rule = NewSimplePushRule::new(owned_room_id!("!room:example.org"), vec![]);
    rules.insert(NewPushRule::Room(rule), None, None).expect("insert");

    assert!(notified(&room(5), &message("alice", text("hello")), &bob, &rules).await.is_none());
}

#[tokio::test]
async fn a_room_rule_does_not_apply_to_other_rooms() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    let rule = NewSimplePushRule::new(owned_room_id!("!other:example.org"), vec![]);
    rules.insert(NewPushRule::Room(rule), None, None).expect("insert");

    assert!(notified(&room(5), &message("alice", text("hello")), &bob, &rules).await.is_some());
}

#[tokio::test]
async fn a_sender_rule_applies_to_that_sender_only() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    let highlight =
        vec![Action::Notify, Action::SetTweak(Tweak::Highlight(ruma::push::HighlightTweakValue::Yes))];
    rules
        .insert(NewPushRule::Sender(NewSimplePushRule::new(user("boss"), highlight)), None, None)
        .expect("insert");
    let room = room(5);

    let from_boss = notified(&room, &message("boss", text("status?")), &bob, &rules).await;
    let from_alice = notified(&room, &message("alice", text("status?")), &bob, &rules).await;

    assert!(from_boss.expect("notified").highlight);
    assert!(!from_alice.expect("notified").highlight);
}

#[tokio::test]
async fn an_event_property_is_rule_matches_exact_values() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    let condition: PushCondition = serde_json::from_value(
        json!({ "kind": "event_property_is", "key": "content.msgtype", "value": "m.emote" }),
    )
    .expect("condition");
    let rule = NewConditionalPushRule::new("no_emotes".to_owned(), vec![condition], vec![]);
    rules.insert(NewPushRule::Override(rule), None, None).expect("insert");
    let room = room(5);
    let emote = json!({ "msgtype": "m.emote", "body": "waves" });

    assert!(notified(&room, &message("alice", emote), &bob, &rules).await.is_none());
    assert!(notified(&room, &message("alice", text("waves")), &bob, &rules).await.is_some());
}

#[tokio::test]
async fn an_at_room_mention_highlights_only_from_senders_with_the_power_to_notify_the_room() {
    let bob = member("bob", "Bob");
    let room = room(5);
    let at_room = json!({ "msgtype": "m.text", "body": "@room meeting", "m.mentions": { "room": true } });

    let from_admin = notified_by_default(&room, &message("admin", at_room.clone()), &bob).await;
    let from_member = notified_by_default(&room, &message("alice", at_room), &bob).await;

    assert!(from_admin.expect("notified").highlight);
    assert!(!from_member.expect("notified").highlight, "power 0 is below notifications.room 50");
}

#[tokio::test]
async fn an_invite_notifies_the_invitee_only() {
    let (bob, carol) = (member("bob", "Bob"), member("carol", "Carol"));
    let invite = |invitee: &LocalMember| {
        let event = json!({
            "type": "m.room.member",
            "sender": user("alice"),
            "room_id": ROOM,
            "state_key": invitee.user_id,
            "content": { "membership": "invite" },
        });
        FlattenedJson::from_raw(&Raw::new(&event).expect("raw event"))
    };

    assert!(notified_by_default(&room(5), &invite(&bob), &bob).await.is_some());
    assert!(notified_by_default(&room(5), &invite(&carol), &bob).await.is_none(), "member events are quiet");
}

#[tokio::test]
async fn the_master_rule_silences_everything() {
    let bob = member("bob", "Bob");
    let mut rules = Ruleset::server_default(&bob.user_id);
    rules.set_enabled(RuleKind::Override, ".m.rule.master", true).expect("master");

    assert!(notified(&room(2), &message("alice", text("hello")), &bob, &rules).await.is_none());
}

#[tokio::test]
async fn notices_do_not_notify() {
    let bob = member("bob", "Bob");
    let notice = json!({ "msgtype": "m.notice", "body": "bot output" });

    assert!(notified_by_default(&room(5), &message("bot", notice), &bob).await.is_none());
}

#[tokio::test]
async fn the_sender_is_never_notified_of_their_own_event() {
    let bob = member("bob", "Bob");

    assert!(notified_by_default(&room(2), &message("bob", text("note to self")), &bob).await.is_none());
}

#[tokio::test]
async fn each_recipient_is_judged_by_their_own_rules() {
    let (bob, carol) = (member("bob", "Bob"), member("carol", "Carol"));
    let template = Template::new();
    let bob_rules = UserRules::Default(Arc::new(template.user_rules(&bob.user_id)));
    let mut carol_rules = Ruleset::server_default(&carol.user_id);
    carol_rules.set_enabled(RuleKind::Override, ".m.rule.master", true).expect("master");
    let carol_rules = UserRules::Custom(Arc::new(carol_rules));
    let dave = member("dave", "Dave");
    let dave_rules = UserRules::Default(Arc::new(template.user_rules(&dave.user_id)));
    let content = json!({ "msgtype": "m.text", "body": "both of you", "m.mentions": { "user_ids": [bob.user_id, carol.user_id] } });

    let recipients = [(&bob, &bob_rules), (&carol, &carol_rules), (&dave, &dave_rules)];
    let evaluated = evaluate(&room(5), &template, &message("alice", content), &recipients).await;

    let outcome: Vec<(&str, bool)> = [&bob, &carol, &dave]
        .iter()
        .filter_map(|m| evaluated.for_user(&m.user_id).map(|a| (m.user_id.as_str(), a.highlight)))
        .collect();
    assert_eq!(outcome, [("@bob:example.org", true), ("@dave:example.org", false)], "Carol muted everything");
}
