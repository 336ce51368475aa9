//! The classic protocol's rules, driven by hand with a fake clock.

use super::*;

const SETTINGS: GroupSettings = GroupSettings {
    initial_rebalance_delay_ms: 3_000,
    max_size: 100,
};

fn join(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

/// Joins through MEMBER_ID_REQUIRED and returns (member id, parked receiver).
fn join_new(g: &mut ClassicGroup, now: i64) -> (String, oneshot::Receiver<JoinResponse>) {
    let JoinAction::Reply(first) = g.join(join("", &["range"]), now, now, &SETTINGS) else {
        panic!("an unknown member first gets its id")
    };
    assert_eq!(first.error, GroupError::MemberIdRequired);
    assert!(first.member_id.starts_with("client-"));
    let JoinAction::Wait(rx) = g.join(join(&first.member_id, &["range"]), now, now, &SETTINGS)
    else {
        panic!("the rejoin waits for the rebalance")
    };
    (first.member_id, rx)
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("the response is ready")
}

fn sync(
    g: &mut ClassicGroup,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now: i64,
) -> SyncAction {
    g.sync(
        SyncRequest {
            generation_id: generation,
            member_id: member.to_string(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
        },
        now,
    )
}

/// Three members join an empty group within the initial delay: one generation, one leader with
/// the member list, the leader's assignment reaches everyone once stored.
fn stable_group_of_three() -> (ClassicGroup, Vec<String>) {
    let mut g = ClassicGroup::new("g", 0);
    let mut ids = Vec::new();
    let mut parked = Vec::new();
    for t in [0, 500, 1_000] {
        let (id, rx) = join_new(&mut g, t);
        ids.push(id);
        parked.push(rx);
        g.tick(t, t, &SETTINGS);
        assert_eq!(g.state(), GroupState::PreparingRebalance);
    }
    // The initial delay (3 s) is extended once because a member joined within it.
    g.tick(3_000, 3_000, &SETTINGS);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.tick(6_000, 6_000, &SETTINGS);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation(), 1);
    let responses: Vec<JoinResponse> = parked.iter_mut().map(ready).collect();
    let leader = responses[0].leader.clone();
    assert_eq!(leader, ids[0], "the first member leads");
    for r in &responses {
        assert_eq!((r.error, r.generation_id), (GroupError::None, 1));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        if r.member_id == leader {
            assert_eq!(r.members.len(), 3);
        } else {
            assert!(r.members.is_empty(), "only the leader gets the member list");
        }
    }
    // Followers sync first and wait; the leader's sync is stored, then everyone is answered.
    let SyncAction::Wait(mut f1) = sync(&mut g, &ids[1], 1, vec![], 6_100) else {
        panic!()
    };
    let assignments: Vec<(String, Bytes)> = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("a-{id}"))))
        .collect();
    let SyncAction::Wait(mut l) = sync(&mut g, &leader, 1, assignments, 6_200) else {
        panic!()
    };
    let stored = g.take_persist().expect("the assignment is written");
    assert_eq!(stored.members.len(), 3);
    assert!(stored.members.iter().all(|m| !m.assignment.is_empty()));
    assert!(
        f1.try_recv().is_err(),
        "nobody is answered before the write"
    );
    g.persisted(true, GroupError::None, 6_300, 6_300, &SETTINGS);
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(
        ready(&mut f1).assignment,
        Bytes::from(format!("a-{}", ids[1]))
    );
    assert_eq!(ready(&mut l).assignment, Bytes::from(format!("a-{leader}")));
    // A late follower gets its stored assignment at once.
    let SyncAction::Reply(late) = sync(&mut g, &ids[2], 1, vec![], 6_400) else {
        panic!()
    };
    assert_eq!(late.assignment, Bytes::from(format!("a-{}", ids[2])));
    (g, ids)
}

#[test]
fn members_that_join_together_land_in_one_generation() {
    stable_group_of_three();
}

#[test]
fn heartbeats_and_their_errors() {
    let (mut g, ids) = stable_group_of_three();
    assert_eq!(g.heartbeat(1, &ids[0], None, 7_000), GroupError::None);
    assert_eq!(
        g.heartbeat(0, &ids[0], None, 7_000),
        GroupError::IllegalGeneration
    );
    assert_eq!(
        g.heartbeat(1, "stranger", None, 7_000),
        GroupError::UnknownMemberId
    );
    // A new member triggers a rebalance; the others learn it from their heartbeat.
    let (_new, _rx) = join_new(&mut g, 7_100);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(1, &ids[1], None, 7_200),
        GroupError::RebalanceInProgress
    );
}

#[test]
fn a_silent_member_expires_and_the_rest_rebalance_without_it() {
    let (mut g, ids) = stable_group_of_three();
    for id in &ids[..2] {
        assert_eq!(g.heartbeat(1, id, None, 12_000), GroupError::None);
    }
    // ids[2] last heard at 6 400 + 10 s session.
    g.tick(16_401, 16_401, &SETTINGS);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.member_ids().len(), 2);
    let mut parked = Vec::new();
    for id in &ids[..2] {
        let JoinAction::Wait(rx) = g.join(join(id, &["range"]), 16_500, 16_500, &SETTINGS) else {
            panic!()
        };
        parked.push(rx);
    }
    // Both rejoined: the rebalance completes at once (not from Empty: no initial delay).
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation(), 2);
    for rx in &mut parked {
        assert_eq!(ready(rx).generation_id, 2);
    }
}

#[test]
fn the_last_member_leaving_empties_the_group_and_stores_it() {
    let (mut g, ids) = stable_group_of_three();
    let leaving: Vec<(String, Option<String>)> = ids.iter().map(|id| (id.clone(), None)).collect();
    let results = g.leave(&leaving, 7_000, 7_000, &SETTINGS);
    assert!(results.iter().all(|e| e.is_ok()));
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation(), 2);
    let stored = g.take_persist().expect("the empty group is written");
    assert!(stored.members.is_empty());
    assert_eq!(stored.protocol_type, "consumer", "the protocol type stays");
    assert_eq!(
        g.leave(&[("nobody".into(), None)], 7_000, 7_000, &SETTINGS),
        vec![GroupError::UnknownMemberId]
    );
}

#[test]
fn protocols_must_overlap_and_types_match() {
    let (mut g, _) = stable_group_of_three();
    let JoinAction::Reply(r) = g.join(join("", &["roundrobin"]), 7_000, 7_000, &SETTINGS) else {
        panic!()
    };
    assert_eq!(r.error, GroupError::InconsistentGroupProtocol);
    let mut other_type = join("", &["range"]);
    other_type.protocol_type = "connect".into();
    let JoinAction::Reply(r) = g.join(other_type, 7_000, 7_000, &SETTINGS) else {
        panic!()
    };
    assert_eq!(r.error, GroupError::InconsistentGroupProtocol);
    let JoinAction::Reply(r) = g.join(join("forged-id", &["range"]), 7_000, 7_000, &SETTINGS)
    else {
        panic!()
    };
    assert_eq!(r.error, GroupError::UnknownMemberId);
}

#[test]
fn a_static_member_returning_is_swapped_in_without_a_rebalance() {
    let mut g = ClassicGroup::new("g", 0);
    let mut req = join("", &["range"]);
    req.group_instance_id = Some("instance-1".into());
    let JoinAction::Wait(mut rx) = g.join(req.clone(), 0, 0, &SETTINGS) else {
        panic!("static members skip MEMBER_ID_REQUIRED")
    };
    g.tick(3_000, 3_000, &SETTINGS);
    let joined = ready(&mut rx);
    assert!(joined.member_id.starts_with("instance-1-"));
    let SyncAction::Wait(_rx) = sync(
        &mut g,
        &joined.member_id,
        1,
        vec![(joined.member_id.clone(), Bytes::from_static(b"asg"))],
        3_100,
    ) else {
        panic!()
    };
    g.take_persist();
    g.persisted(true, GroupError::None, 3_200, 3_200, &SETTINGS);
    assert_eq!(g.state(), GroupState::Stable);
    // The same instance comes back with no member id (a restarted process).
    let JoinAction::ReplyAfterPersist(back) = g.join(req, 4_000, 4_000, &SETTINGS) else {
        panic!()
    };
    assert_eq!(g.state(), GroupState::Stable, "no rebalance");
    assert_eq!(back.generation_id, 1);
    assert!(
        back.skip_assignment,
        "it was the leader: members, but no new assignment"
    );
    assert_eq!(back.members.len(), 1);
    assert_ne!(back.member_id, joined.member_id);
    assert!(g.take_persist().is_some());
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(1, &joined.member_id, Some("instance-1"), 4_100),
        GroupError::FencedInstanceId
    );
    assert_eq!(
        g.heartbeat(1, &back.member_id, Some("instance-1"), 4_100),
        GroupError::None
    );
}

#[test]
fn commits_are_checked_like_kafkas() {
    let mut empty = ClassicGroup::new("simple", 0);
    assert_eq!(
        empty.validate_commit(-1, "", None, 0),
        GroupError::None,
        "simple commits"
    );
    let (mut g, ids) = stable_group_of_three();
    assert_eq!(g.validate_commit(1, &ids[0], None, 7_000), GroupError::None);
    assert_eq!(
        g.validate_commit(0, &ids[0], None, 7_000),
        GroupError::IllegalGeneration
    );
    assert_eq!(
        g.validate_commit(-1, "", None, 7_000),
        GroupError::UnknownMemberId
    );
    assert_eq!(
        g.validate_commit(1, "stranger", None, 7_000),
        GroupError::UnknownMemberId
    );
    let (_new, _rx) = join_new(&mut g, 7_100);
    // PreparingRebalance still accepts commits of the current generation.
    assert_eq!(g.validate_commit(1, &ids[0], None, 7_200), GroupError::None);
}

#[test]
fn transactional_commits_are_checked_like_kafkas() {
    let empty = ClassicGroup::new("simple", 0);
    assert_eq!(empty.validate_txn_commit(-1, "", None), GroupError::None);
    let (g, ids) = stable_group_of_three();
    // (generation, member, instance) → error: KIP-447 checks a named member or generation
    // like OffsetCommit; a request naming neither is an older producer's, and is accepted.
    let cases: &[(i32, &str, Option<&str>, GroupError)] = &[
        (1, &ids[0], None, GroupError::None),
        (0, &ids[0], None, GroupError::IllegalGeneration),
        (-1, &ids[0], None, GroupError::IllegalGeneration),
        (1, "stranger", None, GroupError::UnknownMemberId),
        (1, &ids[0], Some("instance-x"), GroupError::UnknownMemberId),
        (-1, "", None, GroupError::None),
    ];
    for (generation, member, instance, expected) in cases {
        assert_eq!(
            g.validate_txn_commit(*generation, member, *instance),
            *expected,
            "generation {generation}, member {member:?}, instance {instance:?}"
        );
    }
    // A static member while its group completes a rebalance: OffsetCommit is told to wait,
    // TxnOffsetCommit is not; an old incarnation of the instance is fenced.
    let mut g = ClassicGroup::new("g", 0);
    let mut req = join("", &["range"]);
    req.group_instance_id = Some("instance-1".into());
    let JoinAction::Wait(mut rx) = g.join(req, 0, 0, &SETTINGS) else {
        panic!()
    };
    g.tick(3_000, 3_000, &SETTINGS);
    let joined = ready(&mut rx);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let member = joined.member_id.as_str();
    assert_eq!(
        g.validate_txn_commit(1, member, Some("instance-1")),
        GroupError::None
    );
    assert_eq!(
        g.validate_commit(1, member, Some("instance-1"), 3_050),
        GroupError::RebalanceInProgress
    );
    assert_eq!(
        g.validate_txn_commit(1, "instance-1-old", Some("instance-1")),
        GroupError::FencedInstanceId
    );
}

#[test]
fn a_stored_group_comes_back_stable_with_its_members() {
    let (g, ids) = stable_group_of_three();
    let stored = g.to_stored();
    let back = ClassicGroup::from_stored("g", stored.clone(), 100);
    assert_eq!(back.state(), GroupState::Stable);
    assert_eq!(back.generation(), 1);
    assert_eq!(back.to_stored().members, stored.members);
    let mut back = back;
    // Members must heartbeat within a session of the load, or they expire: one keeps
    // heartbeating, the others go and the group rebalances around the one left.
    assert_eq!(back.heartbeat(1, &ids[0], None, 5_000), GroupError::None);
    back.tick(100 + 10_001, 0, &SETTINGS);
    assert_eq!(back.state(), GroupState::PreparingRebalance);
    assert_eq!(back.member_ids(), vec![ids[0].clone()]);
    // Nobody at all: the group empties and is stored so.
    back.tick(5_000 + 10_001, 0, &SETTINGS);
    back.tick(5_000 + 40_002, 0, &SETTINGS);
    assert_eq!(back.state(), GroupState::Empty);
    assert!(back.take_persist().is_some_and(|v| v.members.is_empty()));
}

#[test]
fn subscriptions_parse_from_consumer_protocol_metadata() {
    // version 0, topics ["a", "bb"], user data null
    let meta = [
        0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'b', 255, 255, 255, 255,
    ];
    assert_eq!(
        parse_subscription_topics(&meta),
        Some(vec!["a".to_string(), "bb".to_string()])
    );
    assert_eq!(parse_subscription_topics(&[0, 0, 0, 0, 0, 9]), None);
}

#[test]
fn member_ids_handed_out_are_bounded_and_expire() {
    let mut g = ClassicGroup::new("g", 0);
    for _ in 0..SETTINGS.max_size {
        let JoinAction::Reply(r) = g.join(join("", &["range"]), 0, 0, &SETTINGS) else {
            panic!()
        };
        assert_eq!(r.error, GroupError::MemberIdRequired);
    }
    let JoinAction::Reply(r) = g.join(join("", &["range"]), 0, 0, &SETTINGS) else {
        panic!()
    };
    assert_eq!(
        r.error,
        GroupError::GroupMaxSizeReached,
        "a join loop cannot grow the group"
    );
    // Unused ids expire with the session timeout, and the group takes joins again.
    g.tick(10_001, 10_001, &SETTINGS);
    let JoinAction::Reply(r) = g.join(join("", &["range"]), 10_002, 10_002, &SETTINGS) else {
        panic!()
    };
    assert_eq!(r.error, GroupError::MemberIdRequired);
}

#[test]
fn a_stable_group_whose_subscriptions_do_not_parse_keeps_every_offset() {
    let (mut g, _) = stable_group_of_three();
    g.set_protocol_type_for_test("consumer");
    let offsets: crate::replay::Offsets = [(
        ("t".to_string(), 0),
        crate::replay::StoredOffset {
            value: crate::records::OffsetValue {
                offset: 1,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
                expire_timestamp_ms: None,
            },
            record_offset: 0,
        },
    )]
    .into_iter()
    .collect();
    assert!(crate::retention::expired_offsets(&g, &offsets, i64::MAX, 0).is_empty());
}
