//! Unit tests of [`super`]: the spec's rule and the readable ranges it gives.
use super::{
    HistoryVisibility::{self, *},
    Membership::{self, *},
    Readable, may_see,
};

fn readable(memberships: &[(i64, Membership)], visibilities: &[(i64, HistoryVisibility)]) -> Readable {
    Readable::compute(Shared, memberships, visibilities)
}

#[test]
fn the_rule_follows_the_spec_table() {
    for membership in [Join, Invite, Other] {
        assert!(may_see(WorldReadable, membership, false));
    }
    for visibility in [Shared, Invited, Joined] {
        assert!(may_see(visibility, Join, false), "{visibility:?}");
    }
    assert!(may_see(Shared, Other, true));
    assert!(!may_see(Shared, Other, false));
    assert!(!may_see(Shared, Invite, false));
    assert!(may_see(Invited, Invite, false));
    assert!(!may_see(Invited, Other, true));
    assert!(!may_see(Joined, Invite, true));
    assert!(!may_see(Joined, Other, true));
}

#[test]
fn unknown_visibility_is_shared() {
    let content = serde_json::json!({ "history_visibility": "something_new" });
    assert_eq!(HistoryVisibility::from_content(&content), Shared);
    assert_eq!(HistoryVisibility::from_content(&serde_json::Value::Null), Shared);
}

#[test]
fn a_non_member_reads_nothing_unless_world_readable() {
    assert!(readable(&[], &[(3, Shared)]).is_empty());
    assert!(readable(&[], &[(3, Joined)]).is_empty());
    let peek = readable(&[], &[(3, Shared), (10, WorldReadable), (20, Joined)]);
    // Both visibility changes around the world-readable stretch are visible.
    assert_eq!(peek.ranges, vec![(10, 20)]);
}

#[test]
fn shared_history_is_readable_from_the_start_by_a_member() {
    let r = readable(&[(50, Join)], &[(3, Shared)]);
    assert!(r.contains(1) && r.contains(3) && r.contains(49) && r.contains(50) && r.contains(1000));
    assert_eq!(r.last(), Some(i64::MAX));
}

#[test]
fn a_user_who_left_reads_up_to_their_leave_and_nothing_after() {
    let r = readable(&[(5, Join), (20, Other)], &[(3, Shared)]);
    assert!(r.contains(1) && r.contains(19));
    assert!(r.contains(20), "their own leave event");
    assert!(!r.contains(21));
    assert_eq!(r.last(), Some(20));
}

#[test]
fn joined_visibility_hides_what_came_before_the_join() {
    let r = readable(&[(10, Join)], &[(3, Joined)]);
    assert!(!r.contains(9));
    assert!(r.contains(10), "their own join event");
    assert!(r.contains(11));
}

#[test]
fn invited_visibility_starts_at_the_invite() {
    let r = readable(&[(10, Invite), (15, Join)], &[(3, Invited)]);
    assert!(!r.contains(9));
    assert!(r.contains(10) && r.contains(12) && r.contains(15));
    let shared = readable(&[(10, Invite)], &[(3, Shared)]);
    assert!(shared.is_empty(), "an invitee does not read shared history before joining");
}

#[test]
fn visibility_applies_as_it_was_when_each_event_was_sent() {
    // Joined-only until 30, shared after; the user joins at 40 and later leaves at 60.
    let r = readable(&[(40, Join), (60, Other)], &[(3, Joined), (30, Shared)]);
    assert!(!r.contains(29));
    assert!(r.contains(30), "the change to shared is visible with the value after it");
    assert!(r.contains(35) && r.contains(60));
    assert!(!r.contains(61));
    // Before the first visibility event the default, shared, applied.
    assert_eq!(r.ranges, vec![(i64::MIN, 3), (30, 60)]);
}

#[test]
fn rejoining_under_joined_visibility_leaves_a_gap() {
    let r = readable(&[(10, Join), (20, Other), (30, Join)], &[(3, Joined)]);
    // Up to and including the change to `joined`, the default (shared) applied.
    assert_eq!(r.ranges, vec![(i64::MIN, 3), (10, 20), (30, i64::MAX)]);
    assert_eq!(r.at_or_below(25), Some((10, 20)));
    assert_eq!(r.at_or_below(15), Some((10, 15)));
    assert_eq!(r.at_or_below(9), Some((i64::MIN, 3)));
    assert_eq!(r.at_or_below(i64::MIN), Some((i64::MIN, i64::MIN)));
    assert_eq!(Readable::default().at_or_below(5), None);
    assert_eq!(r.above(2), Some((3, 3)));
    assert_eq!(r.above(25), Some((30, i64::MAX)));
    assert_eq!(r.above(12), Some((13, 20)));
    assert_eq!(r.above(20), Some((30, i64::MAX)));
}

#[test]
fn the_visibility_a_room_was_joined_with_applies_before_its_first_change_here() {
    // Joined over federation at 10 under `joined`; history backfilled below it.
    let r = Readable::compute(Joined, &[(10, Join)], &[]);
    assert_eq!(r.ranges, vec![(10, i64::MAX)]);
    assert_eq!(r.at_or_below(9), None, "nothing to page back into");
    // Once the change to `joined` is backfilled (at -3), what came before it is shared.
    let r = Readable::compute(Shared, &[(10, Join)], &[(-3, Joined)]);
    assert_eq!(r.ranges, vec![(i64::MIN, -3), (10, i64::MAX)]);
}

#[test]
fn shared_history_from_a_gap_is_readable_after_rejoining() {
    let r = readable(&[(10, Join), (20, Other), (30, Join)], &[(3, Shared)]);
    assert_eq!(r.ranges, vec![(i64::MIN, i64::MAX)]);
}
