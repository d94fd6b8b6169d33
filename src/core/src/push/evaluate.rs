//! Evaluating a new room event against the push rules of every local recipient (spec:
//! Client-Server API › Push Notifications › Server behaviour): the local joined members except
//! the sender, and the invitee of an invite.
//!
//! What is stored is one row per event, not one per recipient: the outcome for a recipient with
//! the server-default rules whom the event does not name (the *default*, in
//! `event_notifications` when it notifies), plus a row in `event_push_actions` for each
//! recipient whose outcome differs (a mention, a muted room, changed rules, the invitee). Who
//! the default applies to is known when counting: the local members joined since before the
//! event, other than its sender (see [`crate::storage::push_actions`]). A message to a room of
//! ten thousand members writes one row, written in the event's own transaction.
//!
//! The event is flattened once and every recipient's rules (cached, see [`super::cache`]) are
//! matched by ruma against it with one shared room context whose user fields are swapped per
//! recipient: no per-recipient parsing, cloning of power levels or database access. Recipients
//! with the server-default rules share the matches of the rules that do not name them
//! ([`super::template`]).
//!
//! Message sends evaluate in the sender's task before they join the group commit
//! ([`before_send`]), so the CPU work stays out of the serial write section; the batch only
//! re-evaluates when the room's state changed in between ([`Notifications::computed_on`]).

use std::sync::Arc;

use ruma::{
    EventId, OwnedEventId, OwnedUserId, RoomId, UserId,
    events::TimelineEventType,
    push::{Action, FlattenedJson, PushConditionRoomCtx, Ruleset},
    serde::Raw,
};
use serde_json::{Map, Value, value::RawValue};

use super::{
    room::{self, LocalMember, RoomContext},
    rules::{self, UserRules},
    source::Source,
    template::{DefaultRules, Template},
};
use crate::{
    Error, Homeserver, Result,
    rooms::{NewEvent, Pdu, RoomHead, head::StateMap, relations::relates_to},
    storage::{
        Conn, WriteTx,
        push_actions::{self, NewDefault, NewPushAction},
        unread_log::{Notified, UnreadNote},
    },
};

/// How many relations are followed to find an event's thread (the spec suggests 3).
const THREAD_HOPS: usize = 3;

/// What one event notifies.
#[derive(Clone, Debug, Default)]
pub struct Notifications {
    /// The state map the recipients were taken from.
    state: Option<Arc<StateMap>>,
    /// The thread root, for events in a thread.
    pub thread_id: Option<OwnedEventId>,
    /// The outcome for every recipient not in `exceptions`.
    pub outcome: Outcome,
}

/// How one event notifies its recipients.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The event's sender, who is never notified.
    pub sender: Option<OwnedUserId>,
    /// What a recipient with the server-default rules whom the event does not name gets;
    /// `None` when that does not notify.
    pub default: Option<Actions>,
    /// The recipients whose outcome differs from the default: their actions, or `None` when
    /// they are not notified.
    pub exceptions: Vec<(OwnedUserId, Option<Actions>)>,
}

/// Actions that notify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actions {
    /// Whether they highlight.
    pub highlight: bool,
    /// The actions, as a JSON array (shared by the recipients matched by the same template
    /// rule).
    pub actions: Arc<str>,
}

impl Outcome {
    /// What `user`, a recipient, is notified of.
    pub fn for_user(&self, user: &UserId) -> Option<&Actions> {
        if self.sender.as_deref() == Some(user) {
            return None;
        }
        match self.exceptions.iter().find(|(u, _)| u == user) {
            Some((_, actions)) => actions.as_ref(),
            None => self.default.as_ref(),
        }
    }

    /// Whether anybody is notified.
    pub fn notifies_anyone(&self) -> bool {
        self.default.is_some() || self.exceptions.iter().any(|(_, actions)| actions.is_some())
    }
}

impl Notifications {
    /// Whether these were computed on the state `head` has now.
    pub fn computed_on(&self, head: &RoomHead) -> bool {
        self.state.as_ref().is_some_and(|state| Arc::ptr_eq(state, &head.state))
    }

    /// The rows to write for `pdu`, stored at `stream_ordering`: the default's, if it notifies,
    /// and one per exception.
    pub fn rows<'a>(&'a self, pdu: &'a Pdu, stream_ordering: i64) -> Rows<'a> {
        let thread_id = self.thread_id.as_deref().map(EventId::as_str);
        let default = self.outcome.default.as_ref().map(|d| NewDefault {
            stream_ordering,
            room_id: pdu.room_id.as_str(),
            sender: pdu.sender.as_str(),
            thread_id,
            highlight: d.highlight,
            actions: &d.actions,
        });
        let ts = i64::from(pdu.origin_server_ts.get());
        let exceptions = self
            .outcome
            .exceptions
            .iter()
            .map(|(user_id, actions)| NewPushAction {
                user_id: user_id.as_str(),
                room_id: pdu.room_id.as_str(),
                event_id: pdu.event_id.as_str(),
                stream_ordering,
                thread_id,
                notify: actions.is_some(),
                highlight: actions.as_ref().is_some_and(|a| a.highlight),
                actions: actions.as_ref().map_or("[]", |a| &a.actions),
                ts,
            })
            .collect();
        Rows { default, exceptions }
    }

    /// What the in-memory unread counts learn of `pdu` stored at `stream_ordering` (the same
    /// outcome as [`rows`](Self::rows)); `None` when it notifies nobody.
    pub fn unread_note(&self, pdu: &Pdu, stream_ordering: i64) -> Option<UnreadNote> {
        let highlight = |actions: &Option<Actions>| actions.as_ref().map(|a| a.highlight);
        self.outcome.notifies_anyone().then(|| {
            UnreadNote::Notified(Arc::new(Notified {
                room_id: pdu.room_id.clone(),
                position: stream_ordering,
                sender: pdu.sender.clone(),
                thread_id: self.thread_id.as_ref().map(ToString::to_string),
                default: highlight(&self.outcome.default),
                exceptions: self.outcome.exceptions.iter().map(|(u, a)| (u.clone(), highlight(a))).collect(),
            }))
        })
    }
}

/// The rows of one event's notifications.
pub struct Rows<'a> {
    /// Its default, when that notifies.
    pub default: Option<NewDefault<'a>>,
    /// Its exceptions.
    pub exceptions: Vec<NewPushAction<'a>>,
}

/// Evaluates a message about to be queued for the group commit, on the room's cached head and
/// outside any transaction. `None` when the room's head is not cached: the batch evaluates it.
pub async fn before_send(
    hs: &Homeserver,
    room_id: &RoomId,
    sender: &UserId,
    event: &NewEvent,
) -> Result<Option<Notifications>> {
    let Some(head) = hs.room_cache().head(room_id) else { return Ok(None) };
    let content = serde_json::value::to_raw_value(&event.content).map_err(|e| Error::Internal(e.into()))?;
    let view = View { kind: &event.kind, state_key: event.state_key.as_deref(), sender, content: &content };
    let mut db = Source::Pool(hs.db().pool(), None);
    notifications(hs, &mut db, &head, &view).await.map(Some)
}

/// Evaluates an event built on `head`, reading what the caches miss through `conn` (the write
/// transaction).
pub async fn for_pdu(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, pdu: &Pdu) -> Result<Notifications> {
    let view = View {
        kind: &pdu.kind,
        state_key: pdu.state_key.as_deref(),
        sender: &pdu.sender,
        content: &pdu.content,
    };
    notifications(hs, &mut Source::Conn(conn), head, &view).await
}

/// Evaluates `pdu` on `head` and writes its rows at `stream_ordering`: the one-event path.
pub async fn record(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &RoomHead,
    pdu: &Pdu,
    stream_ordering: i64,
) -> Result<()> {
    let notifications = for_pdu(hs, tx, head, pdu).await?;
    write(tx, &[(&notifications, pdu, stream_ordering)]).await
}

/// Writes the rows of each `(notifications, event, stream position)` with multi-row statements
/// and tells the in-memory unread counts the same outcome: every path that stores notifications
/// goes through here, so the unread log never misses one.
pub async fn write(tx: &mut WriteTx, events: &[(&Notifications, &Pdu, i64)]) -> Result<()> {
    let (mut defaults, mut exceptions) = (Vec::new(), Vec::new());
    for (notifications, pdu, position) in events {
        let rows = notifications.rows(pdu, *position);
        defaults.extend(rows.default);
        exceptions.extend(rows.exceptions);
    }
    push_actions::insert_defaults(tx, &defaults).await?;
    push_actions::insert_many(tx, &exceptions).await?;
    for (notifications, pdu, position) in events {
        if let Some(note) = notifications.unread_note(pdu, *position) {
            tx.note_unread(note);
        }
    }
    Ok(())
}

/// The fields of an event that push rules look at.
struct View<'a> {
    kind: &'a TimelineEventType,
    state_key: Option<&'a str>,
    sender: &'a UserId,
    content: &'a RawValue,
}

async fn notifications(
    hs: &Homeserver,
    db: &mut Source<'_>,
    head: &RoomHead,
    view: &View<'_>,
) -> Result<Notifications> {
    let context = room::context(hs, db, head).await?;
    let invitee = invitee(hs, view).map(|user_id| LocalMember { display_name: user_id.to_string(), user_id });
    let is_invitee = |user: &UserId| invitee.as_ref().is_some_and(|i| i.user_id == user);
    let recipients: Vec<&LocalMember> = context
        .local_joined
        .values()
        .filter(|m| m.user_id != view.sender && !is_invitee(&m.user_id))
        .chain(invitee.as_ref())
        .collect();
    if recipients.is_empty() {
        return Ok(Notifications { state: Some(head.state.clone()), ..Default::default() });
    }
    let users: Vec<&UserId> = recipients.iter().map(|m| &*m.user_id).collect();
    let rules = rules::user_rules_for(hs, db, &users).await?;
    let event = flatten(&head.room_id, view)?;
    let pairs: Vec<(&LocalMember, &UserRules)> = recipients.iter().copied().zip(&rules).collect();
    let outcome = evaluate(&context, hs.push_cache().template(), &event, &pairs).await;
    let thread_id = if outcome.notifies_anyone() { thread_of(db, view.content).await? } else { None };
    Ok(Notifications { state: Some(head.state.clone()), thread_id, outcome })
}

/// The local user an invite is for, who is not joined yet but is notified all the same
/// (`.m.rule.invite_for_me`).
fn invitee(hs: &Homeserver, view: &View<'_>) -> Option<OwnedUserId> {
    if *view.kind != TimelineEventType::RoomMember {
        return None;
    }
    let content: Value = serde_json::from_str(view.content.get()).ok()?;
    if content.get("membership").and_then(Value::as_str) != Some("invite") {
        return None;
    }
    let user = OwnedUserId::try_from(view.state_key?).ok()?;
    (user.server_name() == hs.server_name()).then_some(user)
}

/// The event as push rules see it: its type, content, sender, room and state key.
fn flatten(room_id: &RoomId, view: &View<'_>) -> Result<FlattenedJson> {
    let mut event = Map::new();
    event.insert("type".to_owned(), Value::String(view.kind.to_string()));
    event.insert("sender".to_owned(), Value::String(view.sender.to_string()));
    event.insert("room_id".to_owned(), Value::String(room_id.to_string()));
    if let Some(state_key) = view.state_key {
        event.insert("state_key".to_owned(), Value::String(state_key.to_owned()));
    }
    let content: Value = serde_json::from_str(view.content.get()).map_err(|e| Error::Internal(e.into()))?;
    event.insert("content".to_owned(), content);
    let raw: Raw<Value> = Raw::new(&Value::Object(event)).map_err(|e| Error::Internal(e.into()))?;
    Ok(FlattenedJson::from_raw(&raw))
}

/// Matches `event` against each recipient's rules (ruma's matching; the first matching rule
/// wins, in the spec's order of kinds) and returns the default outcome with the recipients
/// whose outcome differs from it. Rules of the server-default set that do not name the user are
/// matched once for everyone on `template`.
pub async fn evaluate(
    room: &RoomContext,
    template: &Template,
    event: &FlattenedJson,
    recipients: &[(&LocalMember, &UserRules)],
) -> Outcome {
    let sender = event.get_str("sender").and_then(|s| OwnedUserId::try_from(s).ok());
    let Some(first) = recipients.first() else { return Outcome { sender, ..Outcome::default() } };
    // One context for all recipients, whose user fields change between them, and one for the
    // template (the power levels are cloned twice per event, not per recipient).
    let context = |user: &OwnedUserId| {
        let context =
            PushConditionRoomCtx::new(room.room_id.clone(), room.joined, user.clone(), String::new());
        match &room.power {
            Some(power) => context.with_power_levels(power.clone()),
            None => context,
        }
    };
    let mut user_context = context(&first.0.user_id);
    let rules_count = template.rules.len();
    let mut shared = Shared {
        context: context(&template.user),
        matched: vec![None; rules_count],
        serialized: vec![None; rules_count],
    };
    // The template user is named by nothing: what it gets is the default. (With no rules of
    // its own, only the template's context is read; the argument is never looked at.)
    let nobody = DefaultRules(Vec::new());
    let (default, decided_at) = match shared.first_match(template, &nobody, event, &user_context).await {
        Some((actions, index)) => (shared.notifying(actions, index), index.unwrap_or(rules_count)),
        None => (None, rules_count),
    };
    // Users with the server-default rules get the default unless a rule naming them, ahead of
    // the template's match, applies to them; when the event rules those out for everyone (a
    // join is no invite), only users with their own rules are matched one by one.
    let mut per_default_user = false;
    for index in (0..decided_at).filter(|i| template.dependent[*i]) {
        if template.may_apply(index, event, &shared.context).await {
            per_default_user = true;
            break;
        }
    }
    let mut exceptions = Vec::new();
    for (member, rules) in recipients {
        // Nobody is notified of their own events (spec: Push Rules).
        if sender.as_ref() == Some(&member.user_id)
            || (!per_default_user && matches!(rules, UserRules::Default(_)))
        {
            continue;
        }
        user_context.user_id.clone_from(&member.user_id);
        user_context.user_display_name.clone_from(&member.display_name);
        let matched = match rules {
            UserRules::Custom(ruleset) => first_match(ruleset, event, &user_context).await.map(|a| (a, None)),
            UserRules::Default(own) => shared.first_match(template, own, event, &user_context).await,
        };
        let actions = match matched {
            Some((actions, index)) => shared.notifying(actions, index),
            None => None,
        };
        if actions != default {
            exceptions.push((member.user_id.clone(), actions));
        }
    }
    Outcome { sender, default, exceptions }
}

fn serialize(actions: &[Action]) -> Arc<str> {
    serde_json::to_string(actions).unwrap_or_else(|_| "[\"notify\"]".to_owned()).into()
}

/// The actions of the first rule of `ruleset` that applies.
async fn first_match<'r>(
    ruleset: &'r Ruleset,
    event: &FlattenedJson,
    context: &PushConditionRoomCtx,
) -> Option<&'r [Action]> {
    for rule in ruleset.iter() {
        if rule.applies(event, context).await {
            return Some(rule.actions());
        }
    }
    None
}

/// The template's matches for one event, computed as recipients need them.
struct Shared {
    context: PushConditionRoomCtx,
    /// Per template rule: whether it applies.
    matched: Vec<Option<bool>>,
    /// Per template rule: its actions as JSON.
    serialized: Vec<Option<Arc<str>>>,
}

impl Shared {
    /// `actions` if they notify, serialized once per template rule (`index`).
    fn notifying(&mut self, actions: &[Action], index: Option<usize>) -> Option<Actions> {
        if !actions.iter().any(Action::should_notify) {
            return None;
        }
        let highlight = actions.iter().any(Action::is_highlight);
        let actions = match index {
            Some(i) => self.serialized[i].get_or_insert_with(|| serialize(actions)).clone(),
            None => serialize(actions),
        };
        Some(Actions { highlight, actions })
    }

    /// The actions of the first applying rule of a user with the server-default rules: the
    /// user's own version of the rules that name them, the template's match for the others
    /// (with the template rule's index).
    async fn first_match<'r>(
        &mut self,
        template: &'r Template,
        own: &'r DefaultRules,
        event: &FlattenedJson,
        context: &PushConditionRoomCtx,
    ) -> Option<(&'r [Action], Option<usize>)> {
        let mut own = own.0.iter();
        for (i, rule) in template.rules.iter().enumerate() {
            if template.dependent[i] {
                let Some((_, mine)) = own.find(|(j, _)| *j == i) else { continue };
                if mine.as_ref().applies(event, context).await {
                    return Some((mine.actions(), None));
                }
                continue;
            }
            let applies = match self.matched[i] {
                Some(applies) => applies,
                None => {
                    let applies = rule.as_ref().applies(event, &self.context).await;
                    self.matched[i] = Some(applies);
                    applies
                }
            };
            if applies {
                return Some((rule.actions(), Some(i)));
            }
        }
        None
    }
}

/// The thread an event belongs to: the parent of an `m.thread` relation, or the thread of the
/// event it relates to otherwise (a reaction or edit in a thread), up to [`THREAD_HOPS`] deep.
async fn thread_of(db: &mut Source<'_>, content: &RawValue) -> Result<Option<OwnedEventId>> {
    if !content.get().contains("m.relates_to") {
        return Ok(None);
    }
    let content: Value = serde_json::from_str(content.get()).map_err(|e| Error::Internal(e.into()))?;
    let Some((rel_type, parent, _)) = relates_to(&content) else { return Ok(None) };
    let (mut rel_type, mut parent) = (rel_type.to_owned(), parent.to_owned());
    for _ in 0..THREAD_HOPS {
        if rel_type == "m.thread" {
            return Ok(OwnedEventId::try_from(parent).ok());
        }
        match push_actions::relation_of(db.conn().await?, &parent).await? {
            Some((next_type, next_parent)) => (rel_type, parent) = (next_type, next_parent),
            None => return Ok(None),
        }
    }
    Ok(None)
}
