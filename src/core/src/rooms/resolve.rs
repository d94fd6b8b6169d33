//! State resolution v2 (spec: Room Version 2 › State resolution; v12's conflicted state
//! subgraph) over ruma-state-res: given the states at the tips of forked branches and the events
//! they reference, the state every server converges on.

use std::collections::{HashMap, HashSet};

use ruma::{
    EventId, OwnedEventId,
    room_version_rules::RoomVersionRules,
    state_res::{self, StateMap, utils::event_id_set::EventIdSet},
};

use super::Pdu;

/// Resolves `states` (one state map per fork). `events` must hold every event the states name
/// and their full auth chains; an event missing from it makes resolution fail.
pub fn resolve(
    rules: &RoomVersionRules,
    states: &[StateMap<OwnedEventId>],
    events: &HashMap<OwnedEventId, Pdu>,
) -> Result<StateMap<OwnedEventId>, String> {
    let state_res_rules =
        rules.state_res.v2_rules().ok_or("room version does not use state resolution v2")?;
    let auth_chains = states.iter().map(|state| auth_chain(state.values(), events)).collect();
    state_res::resolve(
        &rules.authorization,
        state_res_rules,
        states,
        auth_chains,
        |id| events.get(id).cloned(),
        |conflicted| Some(conflicted_subgraph(conflicted, events)),
    )
    .map_err(|e| e.to_string())
}

/// Every event reachable from `roots` through `auth_events`, roots included.
fn auth_chain<'a>(
    roots: impl IntoIterator<Item = &'a OwnedEventId>,
    events: &HashMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let mut seen = HashSet::new();
    let mut todo: Vec<&OwnedEventId> = roots.into_iter().collect();
    while let Some(id) = todo.pop() {
        if seen.insert(id.clone())
            && let Some(pdu) = events.get(id)
        {
            todo.extend(pdu.auth_events.iter());
        }
    }
    seen.into_iter().collect()
}

/// The conflicted state subgraph (room v12): events on an auth path between two conflicted
/// events, i.e. ancestors of some conflicted event that are also descendants of one.
fn conflicted_subgraph(
    conflicted: &StateMap<Vec<OwnedEventId>>,
    events: &HashMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let conflicted_ids: HashSet<&EventId> = conflicted.values().flatten().map(|id| &**id).collect();
    let ancestors = auth_chain(conflicted.values().flatten(), events);
    // Walk down from the conflicted events, but only within their ancestors.
    let mut children: HashMap<&EventId, Vec<&EventId>> = HashMap::new();
    for id in ancestors.iter() {
        if let Some(pdu) = events.get(id) {
            for parent in &pdu.auth_events {
                children.entry(&**parent).or_default().push(&**id);
            }
        }
    }
    let mut subgraph = HashSet::new();
    let mut todo: Vec<&EventId> = conflicted_ids.iter().copied().collect();
    while let Some(id) = todo.pop() {
        if ancestors.contains(id) && subgraph.insert(id.to_owned()) {
            todo.extend(children.get(id).into_iter().flatten().copied());
        }
    }
    subgraph.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use ruma::{RoomVersionId, events::StateEventType, room_id};
    use serde_json::{Value, json};

    use super::*;

    /// Hand-builds a DAG of unsigned PDUs (state resolution does not look at signatures).
    struct Dag {
        events: HashMap<OwnedEventId, Pdu>,
        ts: u64,
        v12: bool,
    }

    impl Dag {
        fn new() -> Dag {
            Dag { events: HashMap::new(), ts: 0, v12: false }
        }

        fn v12() -> Dag {
            Dag { events: HashMap::new(), ts: 0, v12: true }
        }

        // One argument per PDU field keeps the DAGs below readable as tables.
        #[allow(clippy::too_many_arguments)]
        fn add(
            &mut self,
            id: &str,
            sender: &str,
            kind: &str,
            key: Option<&str>,
            content: Value,
            auth: &[&str],
            prev: &[&str],
        ) -> OwnedEventId {
            self.ts += 1;
            let event_id = OwnedEventId::try_from(format!("${id}")).expect("event ID");
            let mut json = json!({
                "sender": sender,
                "origin_server_ts": self.ts,
                "type": kind,
                "content": content,
                "auth_events": auth.iter().map(|a| format!("${a}")).collect::<Vec<_>>(),
                "prev_events": prev.iter().map(|p| format!("${p}")).collect::<Vec<_>>(),
                "depth": self.ts,
            });
            if let Some(key) = key {
                json["state_key"] = json!(key);
            }
            let room = if self.v12 { room_id!("!create") } else { room_id!("!room:a.test") };
            json["room_id"] = json!(room);
            if self.v12 && kind == "m.room.create" {
                json.as_object_mut().map(|o| o.remove("room_id"));
            }
            let object = serde_json::from_value(json).expect("canonical JSON");
            let pdu = Pdu::from_canonical(event_id.clone(), object, Some(room)).expect("PDU");
            self.events.insert(event_id.clone(), pdu);
            event_id
        }
    }

    fn state(entries: &[(&str, &str, &str)]) -> StateMap<OwnedEventId> {
        entries
            .iter()
            .map(|(kind, key, id)| {
                (
                    (StateEventType::from(*kind), (*key).to_owned()),
                    OwnedEventId::try_from(format!("${id}")).expect("ID"),
                )
            })
            .collect()
    }

    fn rules(version: RoomVersionId) -> RoomVersionRules {
        version.rules().expect("supported version")
    }

    const A: &str = "@alice:a.test";
    const B: &str = "@bob:a.test";
    const C: &str = "@carol:a.test";

    /// create, Alice joins, power levels (Alice 100, Bob 50), public join rules, Bob and Carol join.
    fn base_room(dag: &mut Dag) {
        dag.add(
            "create",
            A,
            "m.room.create",
            Some(""),
            json!({ "creator": A, "room_version": "10" }),
            &[],
            &[],
        );
        dag.add("ja", A, "m.room.member", Some(A), json!({ "membership": "join" }), &["create"], &["create"]);
        let pl = json!({ "users": { A: 100, B: 50 }, "ban": 50, "kick": 50, "state_default": 50, "events_default": 0 });
        dag.add("pl1", A, "m.room.power_levels", Some(""), pl, &["create", "ja"], &["ja"]);
        dag.add(
            "jr",
            A,
            "m.room.join_rules",
            Some(""),
            json!({ "join_rule": "public" }),
            &["create", "ja", "pl1"],
            &["pl1"],
        );
        dag.add(
            "jb",
            B,
            "m.room.member",
            Some(B),
            json!({ "membership": "join" }),
            &["create", "pl1", "jr"],
            &["jr"],
        );
        dag.add(
            "jc",
            C,
            "m.room.member",
            Some(C),
            json!({ "membership": "join" }),
            &["create", "pl1", "jr"],
            &["jb"],
        );
    }

    fn base_state() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![
            ("m.room.create", "", "create"),
            ("m.room.member", A, "ja"),
            ("m.room.power_levels", "", "pl1"),
            ("m.room.join_rules", "", "jr"),
            ("m.room.member", B, "jb"),
            ("m.room.member", C, "jc"),
        ]
    }

    #[test]
    fn a_ban_racing_a_demotion_of_the_banner_loses() {
        let mut dag = Dag::new();
        base_room(&mut dag);
        // Fork 1: Alice demotes Bob below the ban level.
        let pl =
            json!({ "users": { A: 100 }, "ban": 50, "kick": 50, "state_default": 50, "events_default": 0 });
        dag.add("pl2", A, "m.room.power_levels", Some(""), pl, &["create", "ja", "pl1"], &["jc"]);
        // Fork 2: Bob, still at 50 in his branch, bans Carol.
        let ban = json!({ "membership": "ban" });
        dag.add("ban", B, "m.room.member", Some(C), ban, &["create", "pl1", "jb", "jc"], &["jc"]);

        let mut fork1 = base_state();
        fork1.retain(|e| e.0 != "m.room.power_levels");
        fork1.push(("m.room.power_levels", "", "pl2"));
        let mut fork2 = base_state();
        fork2.retain(|e| e.1 != C);
        fork2.push(("m.room.member", C, "ban"));

        for version in [RoomVersionId::V10, RoomVersionId::V11] {
            let resolved = resolve(&rules(version.clone()), &[state(&fork1), state(&fork2)], &dag.events)
                .expect("resolves");
            let get = |kind: &str, key: &str| {
                resolved.get(&(StateEventType::from(kind), key.to_owned())).map(|id| id.as_str().to_owned())
            };
            assert_eq!(
                get("m.room.power_levels", "").as_deref(),
                Some("$pl2"),
                "{version}: the demotion wins"
            );
            assert_eq!(
                get("m.room.member", C).as_deref(),
                Some("$jc"),
                "{version}: the ban by a demoted user is dropped"
            );
        }
    }

    #[test]
    fn conflicting_topics_resolve_the_same_whatever_the_fork_order() {
        let mut dag = Dag::new();
        base_room(&mut dag);
        let auth = ["create", "pl1", "jb"];
        dag.add("t1", B, "m.room.topic", Some(""), json!({ "topic": "one" }), &auth, &["jc"]);
        dag.add("t2", B, "m.room.topic", Some(""), json!({ "topic": "two" }), &auth, &["jc"]);
        let mut fork1 = base_state();
        fork1.push(("m.room.topic", "", "t1"));
        let mut fork2 = base_state();
        fork2.push(("m.room.topic", "", "t2"));

        let rules = rules(RoomVersionId::V11);
        let one = resolve(&rules, &[state(&fork1), state(&fork2)], &dag.events).expect("resolves");
        let two = resolve(&rules, &[state(&fork2), state(&fork1)], &dag.events).expect("resolves");
        assert_eq!(one, two, "resolution does not depend on the order of the forks");
        let topic = one.get(&(StateEventType::RoomTopic, String::new())).expect("a topic");
        assert_eq!(topic.as_str(), "$t2", "the later topic (by mainline then timestamp) wins");
        assert_eq!(one.get(&(StateEventType::RoomMember, C.to_owned())).map(|id| id.as_str()), Some("$jc"));
    }

    #[test]
    fn in_v12_a_ban_racing_a_demotion_loses_through_the_conflicted_subgraph() {
        // v12: the room ID is the create event's ID, the create event is in no auth_events, and
        // the creator's power is implicit.
        let mut dag = Dag::v12();
        dag.add("create", A, "m.room.create", Some(""), json!({ "room_version": "12" }), &[], &[]);
        dag.add("ja", A, "m.room.member", Some(A), json!({ "membership": "join" }), &[], &["create"]);
        let pl =
            json!({ "users": { B: 50 }, "ban": 50, "kick": 50, "state_default": 50, "events_default": 0 });
        dag.add("pl1", A, "m.room.power_levels", Some(""), pl, &["ja"], &["ja"]);
        dag.add(
            "jr",
            A,
            "m.room.join_rules",
            Some(""),
            json!({ "join_rule": "public" }),
            &["ja", "pl1"],
            &["pl1"],
        );
        dag.add("jb", B, "m.room.member", Some(B), json!({ "membership": "join" }), &["pl1", "jr"], &["jr"]);
        dag.add("jc", C, "m.room.member", Some(C), json!({ "membership": "join" }), &["pl1", "jr"], &["jb"]);
        let pl2 = json!({ "users": {}, "ban": 50, "kick": 50, "state_default": 50, "events_default": 0 });
        dag.add("pl2", A, "m.room.power_levels", Some(""), pl2, &["ja", "pl1"], &["jc"]);
        dag.add(
            "ban",
            B,
            "m.room.member",
            Some(C),
            json!({ "membership": "ban" }),
            &["pl1", "jb", "jc"],
            &["jc"],
        );

        let mut fork1 = base_state();
        fork1.retain(|e| e.0 != "m.room.power_levels");
        fork1.push(("m.room.power_levels", "", "pl2"));
        let mut fork2 = base_state();
        fork2.retain(|e| e.1 != C);
        fork2.push(("m.room.member", C, "ban"));
        let resolved = resolve(&rules(RoomVersionId::V12), &[state(&fork1), state(&fork2)], &dag.events)
            .expect("resolves");
        assert_eq!(
            resolved.get(&(StateEventType::RoomPowerLevels, String::new())).map(|i| i.as_str()),
            Some("$pl2")
        );
        assert_eq!(
            resolved.get(&(StateEventType::RoomMember, C.to_owned())).map(|i| i.as_str()),
            Some("$jc")
        );
    }

    #[test]
    fn the_conflicted_subgraph_holds_the_events_between_conflicted_events() {
        let mut dag = Dag::new();
        base_room(&mut dag);
        let pl = json!({ "users": { A: 100 }, "ban": 50 });
        dag.add("pl2", A, "m.room.power_levels", Some(""), pl, &["create", "ja", "pl1"], &["jc"]);
        let conflicted: StateMap<Vec<OwnedEventId>> = [(
            (StateEventType::RoomPowerLevels, String::new()),
            vec![OwnedEventId::try_from("$pl1").expect("ID"), OwnedEventId::try_from("$pl2").expect("ID")],
        )]
        .into_iter()
        .collect();
        let subgraph = conflicted_subgraph(&conflicted, &dag.events);
        let mut ids: Vec<&str> = subgraph.iter().map(|id| id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["$pl1", "$pl2"], "pl2 descends from pl1 directly; create and ja are only ancestors");
    }

    #[test]
    fn unconflicted_state_passes_through_unchanged() {
        let mut dag = Dag::new();
        base_room(&mut dag);
        let s = state(&base_state());
        let resolved =
            resolve(&rules(RoomVersionId::V11), &[s.clone(), s.clone()], &dag.events).expect("resolves");
        assert_eq!(resolved, s);
    }

    #[test]
    fn a_join_that_was_never_authorised_is_dropped_from_a_conflict() {
        let mut dag = Dag::new();
        base_room(&mut dag);
        // Alice switches the room to invite-only; concurrently Dave joins as if it were public.
        let auth = ["create", "ja", "pl1"];
        dag.add("jr2", A, "m.room.join_rules", Some(""), json!({ "join_rule": "invite" }), &auth, &["jc"]);
        let d = "@dave:b.test";
        dag.add(
            "jd",
            d,
            "m.room.member",
            Some(d),
            json!({ "membership": "join" }),
            &["create", "pl1", "jr"],
            &["jc"],
        );
        let mut fork1 = base_state();
        fork1.retain(|e| e.0 != "m.room.join_rules");
        fork1.push(("m.room.join_rules", "", "jr2"));
        let mut fork2 = base_state();
        fork2.push(("m.room.member", d, "jd"));
        let resolved = resolve(&rules(RoomVersionId::V11), &[state(&fork1), state(&fork2)], &dag.events)
            .expect("resolves");
        assert_eq!(
            resolved.get(&(StateEventType::RoomJoinRules, String::new())).map(|i| i.as_str()),
            Some("$jr2")
        );
        assert!(
            !resolved.contains_key(&(StateEventType::RoomMember, d.to_owned())),
            "the join is applied after the join rules changed, so it fails auth"
        );
    }
}
