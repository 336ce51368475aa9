use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::*;
use crate::consumer::group::tests::{Topics, topics};
use crate::consumer::group::{ConsumerGroupState, HeartbeatRequest};
use crate::consumer::member::{JOIN_EPOCH, LEAVE_EPOCH};
use crate::records::put_string;
use crate::replay::OffsetsReplay;

const T: Uuid = Uuid::from_u128(0xA);

fn six() -> Topics {
    topics(&[("t", T, 6)])
}

fn parts(ps: &[i32]) -> Assignment {
    let mut a = Assignment::new();
    if !ps.is_empty() {
        a.insert(T, ps.iter().copied().collect());
    }
    a
}

/// A subscription to "t" at v1, owning `owned` (what a cooperative client sends; an eager
/// one owns nothing when it rejoins).
fn subscription(owned: &[i32]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(1);
    out.put_i32(1);
    put_string(&mut out, "t");
    out.put_i32(-1);
    out.put_i32(1);
    put_string(&mut out, "t");
    out.put_i32(owned.len() as i32);
    for p in owned {
        out.put_i32(*p);
    }
    out.freeze()
}

fn classic_member(id: &str, assigned: &[i32]) -> ClassicMember {
    ClassicMember {
        member_id: id.into(),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocols: vec![
            ("range".into(), subscription(&[])),
            ("roundrobin".into(), subscription(&[])),
        ],
        assignment: encode_assignment(1, &[("t".into(), assigned.to_vec())]),
        ..ClassicMember::default()
    }
}

fn snapshot() -> ClassicSnapshot {
    ClassicSnapshot {
        generation: 5,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        members: vec![
            classic_member("a", &[0, 1, 2]),
            classic_member("b", &[3, 4, 5]),
        ],
    }
}

struct Mixed {
    group: ConsumerGroup,
    topics: Topics,
    settings: ConsumerGroupSettings,
    log: Vec<ConsumerRecord>,
}

impl Mixed {
    /// The classic group of `snapshot()` moved to the consumer protocol.
    fn upgraded() -> Self {
        let topics = six();
        let settings = ConsumerGroupSettings::default();
        let log =
            ConsumerGroup::upgrade_records(&snapshot(), &topics, &settings).expect("upgrades");
        let mut group = ConsumerGroup::new("g");
        for r in &log {
            group.replay(r);
        }
        group.restart_timers(&settings, 0);
        Mixed {
            group,
            topics,
            settings,
            log,
        }
    }

    fn commit(&mut self, decision: &Decision, now_ms: i64) {
        self.group.apply(decision, &self.settings, now_ms);
        self.log.extend(decision.records.iter().cloned());
    }

    /// A consumer-protocol member's heartbeat, applied.
    fn heartbeat(&mut self, id: &str, epoch: i32, owned: &[i32]) -> Decision {
        let req = HeartbeatRequest {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(parts(owned)),
            ..HeartbeatRequest::default()
        };
        let d = self
            .group
            .heartbeat(&req, &self.topics, &self.settings, 0)
            .expect("heartbeat");
        self.commit(&d, 0);
        d
    }

    fn join(&mut self, id: &str, owned: &[i32], now_ms: i64) -> Result<Decision, Refusal> {
        let req = ClassicJoin {
            member_id: id.into(),
            client_id: "rdkafka".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(owned))],
            ..ClassicJoin::default()
        };
        let d = self
            .group
            .classic_join(&req, &self.topics, &self.settings, now_ms)?;
        self.commit(&d, now_ms);
        Ok(d)
    }

    fn sync(&mut self, id: &str, generation: i32) -> Result<Vec<i32>, GroupError> {
        let bytes = self
            .group
            .classic_sync(
                id,
                None,
                generation,
                (Some("consumer"), Some("range")),
                &self.topics,
                0,
            )
            .map_err(|r| r.error)?;
        let named = decode_assignment(&bytes).expect("our assignment decodes");
        Ok(named.into_iter().flat_map(|(_, p)| p).collect())
    }

    fn beat(&mut self, id: &str, generation: i32) -> GroupError {
        self.group
            .classic_heartbeat(id, None, generation, 0)
            .unwrap_or_else(|r| r.error)
    }

    fn owned(&self, id: &str) -> Vec<i32> {
        let m = self.group.member(id).expect("member");
        partitions_of(&m.assigned).map(|(_, p)| p).collect()
    }

    /// No partition owned by two members, as the records say once replayed from scratch.
    fn check(&self) {
        let mut seen = std::collections::BTreeSet::new();
        for m in self.group.members() {
            for p in partitions_of(&m.assigned).chain(partitions_of(&m.pending_revocation)) {
                assert!(seen.insert(p), "{p:?} owned twice");
            }
        }
        let mut replay = OffsetsReplay::new();
        for r in &self.log {
            let (k, v) = r.encode("g");
            replay.apply(&k, v.as_deref());
        }
        let mut loaded = replay.consumer_groups.remove("g").expect("read back");
        assert_eq!(loaded.drop_incomplete_members(), 0);
        for m in self.group.members() {
            assert_eq!(loaded.member(&m.member_id), Some(m));
        }
    }
}

use crate::consumer::member::partitions_of;

#[test]
fn an_upgraded_group_keeps_each_classic_member_at_its_generation() {
    let mixed = Mixed::upgraded();
    let g = &mixed.group;
    assert_eq!((g.group_epoch(), g.assignment_epoch()), (5, 5));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    assert_eq!(mixed.owned("a"), vec![0, 1, 2]);
    assert_eq!(mixed.owned("b"), vec![3, 4, 5]);
    let a = g.member("a").expect("a");
    assert_eq!((a.member_epoch, a.state), (5, MemberState::Stable));
    assert_eq!(g.target("a"), Some(&parts(&[0, 1, 2])));
    let classic = a.metadata.classic.as_ref().expect("classic metadata");
    assert_eq!(classic.session_timeout_ms, 10_000);
    assert_eq!(classic.supported_protocols.len(), 2, "every protocol kept");
    assert_eq!(a.metadata.subscribed_topic_names, vec!["t"]);
    // Its own session timeout, not the group's 45 s.
    assert_eq!(g.expired(9_999), vec![]);
    assert_eq!(g.expired(10_000).len(), 2);
    mixed.check();
}

#[test]
fn an_upgrade_is_refused_where_kafka_refuses_it() {
    let t = six();
    let ok = ConsumerGroupSettings::default();
    let mut bad_bytes = snapshot();
    bad_bytes.members[1].protocols[0].1 = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
    let mut connect = snapshot();
    connect.protocol_type = Some("connect".into());
    let cases: Vec<(&str, ClassicSnapshot, ConsumerGroupSettings)> = vec![
        (
            "policy disabled",
            snapshot(),
            ConsumerGroupSettings {
                migration_policy: MigrationPolicy::Disabled,
                ..ok
            },
        ),
        (
            "policy downgrade only",
            snapshot(),
            ConsumerGroupSettings {
                migration_policy: MigrationPolicy::Downgrade,
                ..ok
            },
        ),
        ("not the consumer protocol type", connect, ok),
        (
            "more members than group.consumer.max.size",
            snapshot(),
            ConsumerGroupSettings { max_size: 1, ..ok },
        ),
        ("a subscription that does not parse", bad_bytes, ok),
    ];
    for (what, snap, settings) in cases {
        let refusal = ConsumerGroup::upgrade_records(&snap, &t, &settings).expect_err(what);
        assert_eq!(refusal.error, GroupError::GroupIdNotFound, "{what}");
    }
    let upgrade_only = ConsumerGroupSettings {
        migration_policy: MigrationPolicy::Upgrade,
        ..ok
    };
    assert!(ConsumerGroup::upgrade_records(&snapshot(), &t, &upgrade_only).is_ok());
    // A member that joined but was never assigned owns nothing.
    let mut fresh = snapshot();
    fresh.members[1].assignment = Bytes::new();
    let records = ConsumerGroup::upgrade_records(&fresh, &t, &ok).expect("upgrades");
    assert!(records.contains(&ConsumerRecord::TargetMember(
        "b".into(),
        Some(Assignment::new())
    )));
}

#[test]
fn an_eager_classic_member_rejoins_and_hands_over_what_moved() {
    let mut mixed = Mixed::upgraded();
    // A consumer-protocol member joins: epoch 6, a share for it, nothing free yet.
    let joined = mixed.heartbeat("c", JOIN_EPOCH, &[]);
    assert_eq!(joined.member_epoch, 6);
    assert_eq!(joined.assignment, Some(Assignment::new()));
    assert_eq!(mixed.group.group_epoch(), 6);
    // The classic members learn of it from their heartbeat, and keep reading until they rejoin.
    assert_eq!(mixed.beat("a", 5), GroupError::RebalanceInProgress);
    assert_eq!(mixed.beat("b", 5), GroupError::RebalanceInProgress);
    assert_eq!(mixed.sync("a", 5), Err(GroupError::RebalanceInProgress));
    // "a" is eager: it gave up everything before rejoining. It is answered at once at epoch 6.
    let a = mixed.join("a", &[], 100).expect("joins");
    assert_eq!(a.member_epoch, 6);
    let kept = mixed.sync("a", 6).expect("syncs");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter().all(|p| [0, 1, 2].contains(p)),
        "sticky: {kept:?}"
    );
    assert_eq!(mixed.beat("a", 6), GroupError::None);
    // "c" collects what "a" released at its next heartbeat; "b" still holds the rest.
    let c = mixed.heartbeat("c", 6, &[]);
    let got: Vec<i32> = c
        .assignment
        .iter()
        .flat_map(partitions_of)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    mixed.check();
    // "b" rejoins the same way; then "c" has its two and everyone is stable.
    assert_eq!(mixed.join("b", &[], 200).expect("joins").member_epoch, 6);
    assert_eq!(mixed.sync("b", 6).expect("syncs").len(), 2);
    let c = mixed.heartbeat("c", 6, &got);
    assert_eq!(c.assignment.map(|a| partitions_of(&a).count()), Some(2));
    assert_eq!(mixed.group.state(), ConsumerGroupState::Stable);
    assert_eq!(mixed.beat("b", 6), GroupError::None);
    mixed.check();
}

#[test]
fn a_cooperative_classic_member_revokes_first() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    // "a" rejoins still owning its three: it must give one up and stays at epoch 5.
    let a = mixed.join("a", &[0, 1, 2], 100).expect("joins");
    assert_eq!(a.member_epoch, 5);
    let m = mixed.group.member("a").expect("a");
    assert_eq!(m.state, MemberState::UnrevokedPartitions);
    // Its sync at 5 is answered with what it keeps (not "rejoin": it is revoking), and its
    // heartbeats tell it to rejoin once it revoked.
    let kept = mixed.sync("a", 5).expect("syncs");
    assert_eq!(kept.len(), 2);
    assert_eq!(mixed.beat("a", 5), GroupError::RebalanceInProgress);
    let a = mixed.join("a", &kept, 200).expect("rejoins");
    assert_eq!(a.member_epoch, 6);
    assert_eq!(
        mixed.group.member("a").map(|m| m.state),
        Some(MemberState::Stable)
    );
    mixed.check();
}

#[test]
fn classic_requests_are_checked_with_kafkas_codes() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    assert_eq!(mixed.sync("nobody", 5), Err(GroupError::UnknownMemberId));
    assert_eq!(mixed.beat("nobody", 5), GroupError::UnknownMemberId);
    assert_eq!(
        mixed.sync("c", 6),
        Err(GroupError::UnknownMemberId),
        "not a classic member"
    );
    assert_eq!(mixed.beat("a", 4), GroupError::IllegalGeneration);
    let wrong_protocol = mixed.group.classic_sync(
        "a",
        None,
        5,
        (Some("consumer"), Some("roundrobin")),
        &mixed.topics,
        0,
    );
    assert_eq!(
        wrong_protocol.map_err(|r| r.error),
        Err(GroupError::InconsistentGroupProtocol)
    );
    let unknown_instance = mixed
        .group
        .classic_heartbeat("someone-else", Some("i-1"), 5, 0);
    assert_eq!(
        unknown_instance.map_err(|r| r.error),
        Err(GroupError::UnknownMemberId)
    );

    let join = |protocol_type: &str, protocols: Vec<(String, Bytes)>| ClassicJoin {
        member_id: "d".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: protocol_type.into(),
        protocols,
        ..ClassicJoin::default()
    };
    for (what, req) in [
        (
            "another protocol type",
            join("connect", vec![("range".into(), subscription(&[]))]),
        ),
        ("no protocol", join("consumer", vec![])),
        (
            "a protocol no classic member has",
            join("consumer", vec![("sticky".into(), subscription(&[]))]),
        ),
        (
            "bytes that do not parse",
            join(
                "consumer",
                vec![("range".into(), Bytes::from_static(b"\x00"))],
            ),
        ),
    ] {
        let refusal = mixed
            .group
            .classic_join(&req, &mixed.topics, &mixed.settings, 0)
            .expect_err(what);
        assert_eq!(
            refusal.error,
            GroupError::InconsistentGroupProtocol,
            "{what}"
        );
    }
    // A classic member commits with its generation at any version; a wrong one is
    // ILLEGAL_GENERATION, not STALE_MEMBER_EPOCH.
    assert_eq!(
        mixed.group.validate_offset_commit("a", 5, false, false),
        GroupError::None
    );
    assert_eq!(
        mixed.group.validate_offset_commit("a", 4, false, true),
        GroupError::IllegalGeneration
    );
    assert_eq!(
        mixed.group.validate_offset_commit("c", 6, false, false),
        GroupError::UnsupportedVersion
    );
}

#[test]
fn a_classic_member_that_does_not_sync_or_rejoin_in_time_is_removed() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    let why = |mixed: &Mixed, id: &str, at_ms: i64| -> Vec<&'static str> {
        mixed
            .group
            .expired(at_ms)
            .into_iter()
            .filter(|(m, _)| m == id)
            .map(|(_, why)| why)
            .collect()
    };
    let late = "the classic member did not rejoin or sync within its rebalance timeout";
    // "a" joins at 1 s: it must sync within its rebalance timeout (30 s), heartbeats or not.
    mixed.join("a", &[], 1_000).expect("joins");
    assert_eq!(
        mixed.group.classic_heartbeat("a", None, 6, 25_000).ok(),
        Some(GroupError::None)
    );
    assert!(why(&mixed, "a", 30_999).is_empty());
    assert_eq!(why(&mixed, "a", 31_000), vec![late]);
    // Its SyncGroup clears that deadline.
    let synced = mixed.group.classic_sync(
        "a",
        None,
        6,
        (Some("consumer"), Some("range")),
        &mixed.topics,
        30_000,
    );
    assert!(synced.is_ok());
    assert!(why(&mixed, "a", 31_000).is_empty());
    // A heartbeat answered REBALANCE_IN_PROGRESS sets a rejoin deadline, which later
    // heartbeats do not push back.
    let beat = |mixed: &mut Mixed, at_ms| mixed.group.classic_heartbeat("b", None, 5, at_ms).ok();
    assert_eq!(
        beat(&mut mixed, 5_000),
        Some(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        beat(&mut mixed, 14_000),
        Some(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        beat(&mut mixed, 26_000),
        Some(GroupError::RebalanceInProgress)
    );
    assert!(why(&mixed, "b", 34_999).is_empty());
    assert_eq!(why(&mixed, "b", 35_000), vec![late]);
    // And a classic member's session is its own 10 s.
    assert_eq!(why(&mixed, "a", 40_000), vec!["its session expired"]);
}

#[test]
fn classic_members_leave_with_one_epoch_bump() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    let (records, results) = mixed.group.classic_leave(
        &[
            ("a".into(), None),
            ("c".into(), None),
            ("nobody".into(), None),
            ("b".into(), None),
        ],
        &mixed.topics,
    );
    assert_eq!(
        results,
        vec![
            GroupError::None,
            GroupError::UnknownMemberId,
            GroupError::UnknownMemberId,
            GroupError::None
        ]
    );
    let bumps = records
        .iter()
        .filter(|r| matches!(r, ConsumerRecord::GroupEpoch(Some(_))))
        .count();
    assert_eq!(bumps, 1);
    mixed.commit(
        &Decision {
            records,
            ..Decision::default()
        },
        0,
    );
    assert_eq!(mixed.group.members().count(), 1);
    assert_eq!(mixed.group.group_epoch(), 7);
    // "c" gets all six once it asks.
    let c = mixed.heartbeat("c", 6, &[]);
    assert_eq!(c.member_epoch, 7);
    assert_eq!(c.assignment.map(|a| partitions_of(&a).count()), Some(6));
    mixed.check();
}

#[test]
fn the_last_consumer_member_leaving_turns_the_group_classic_again() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    let s = mixed.settings;
    let t = &mixed.topics;
    // Not while a classic member is the one leaving, nor without classic members left, nor
    // against the policy or group.max.size.
    assert!(mixed.group.downgrade("a", &s, 100, t, 0).is_none());
    let upgrade_only = ConsumerGroupSettings {
        migration_policy: MigrationPolicy::Upgrade,
        ..s
    };
    assert!(
        mixed
            .group
            .downgrade("c", &upgrade_only, 100, t, 0)
            .is_none()
    );
    assert!(mixed.group.downgrade("c", &s, 1, t, 0).is_none());
    assert!(mixed.group.downgrade("nobody", &s, 100, t, 0).is_none());

    let down = mixed
        .group
        .downgrade("c", &s, 100, t, 42)
        .expect("downgrades");
    let classic = &down.classic;
    assert_eq!(classic.generation, 6);
    assert_eq!(classic.protocol.as_deref(), Some("range"));
    assert_eq!(classic.protocol_type, "consumer");
    assert_eq!(classic.members.len(), 2);
    for m in &classic.members {
        let named = decode_assignment(&m.assignment).expect("decodes");
        let target = mixed.group.target(&m.member_id).expect("target");
        assert_eq!(by_id(&named, t), *target, "{}: its target", m.member_id);
        assert_eq!(m.session_timeout_ms, 10_000);
    }
    // Read back from the log: a classic group, the consumer group gone, offsets untouched.
    let mut replay = OffsetsReplay::new();
    for r in mixed.log.iter().chain(&down.records) {
        let (k, v) = r.encode("g");
        replay.apply(&k, v.as_deref());
    }
    replay.apply(
        &crate::records::encode_key(&crate::records::RecordKey::Group { group: "g".into() }),
        Some(&crate::records::encode_group_value(classic)),
    );
    assert!(!replay.consumer_groups.contains_key("g"));
    let stored = replay
        .groups
        .get("g")
        .cloned()
        .flatten()
        .expect("classic group");
    assert_eq!(stored.generation, 6);

    // With no classic member left there is nothing to downgrade to.
    let mut alone = Mixed::upgraded();
    alone.heartbeat("c", JOIN_EPOCH, &[]);
    let (records, _) = alone
        .group
        .classic_leave(&[("a".into(), None), ("b".into(), None)], &alone.topics);
    alone.commit(
        &Decision {
            records,
            ..Decision::default()
        },
        0,
    );
    assert!(
        alone
            .group
            .downgrade("c", &s, 100, &alone.topics, 0)
            .is_none()
    );
}

#[test]
fn a_consumer_heartbeat_from_a_classic_member_makes_it_a_consumer_member() {
    let mut mixed = Mixed::upgraded();
    let d = mixed.heartbeat("a", 5, &[0, 1, 2]);
    assert_eq!(d.member_epoch, 5);
    assert!(
        mixed
            .group
            .member("a")
            .is_some_and(|m| m.metadata.classic.is_none())
    );
    // Its session is the group's now, not the classic 10 s.
    assert!(mixed.group.expired(10_000).iter().all(|(id, _)| id != "a"));
    let leave = mixed
        .group
        .leave(
            &HeartbeatRequest {
                member_id: "a".into(),
                member_epoch: LEAVE_EPOCH,
                ..HeartbeatRequest::default()
            },
            &mixed.topics,
        )
        .expect("leaves");
    assert!(!leave.records.is_empty());
}

#[test]
fn the_protocol_most_members_prefer_among_those_all_support_is_chosen() {
    let member = |id: &str, names: &[&str]| {
        let mut m = ConsumerMember::new(id);
        m.metadata.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: 1,
            supported_protocols: names
                .iter()
                .map(|n| (n.to_string(), Bytes::new()))
                .collect(),
        });
        m
    };
    let cases: &[(&[&[&str]], Option<&str>)] = &[
        (
            &[
                &["range", "roundrobin"],
                &["roundrobin", "range"],
                &["roundrobin"],
            ],
            Some("roundrobin"),
        ),
        (
            &[&["range", "roundrobin"], &["range", "roundrobin"]],
            Some("range"),
        ),
        (&[&["range"], &["sticky"]], None),
        (&[&["b", "a"], &["a", "b"]], Some("a")),
    ];
    for (lists, want) in cases {
        let members: Vec<ConsumerMember> = lists
            .iter()
            .enumerate()
            .map(|(i, names)| member(&i.to_string(), names))
            .collect();
        let refs: Vec<&ConsumerMember> = members.iter().collect();
        assert_eq!(select_protocol(&refs).as_deref(), *want, "{lists:?}");
    }
}

#[test]
fn a_new_classic_member_waits_for_every_partition_before_rejoining_for_them() {
    let mut mixed = Mixed::upgraded();
    // A third classic member joins: its share is still owned by "a" and "b".
    let d = mixed.join("d", &[], 0).expect("joins");
    assert_eq!(d.member_epoch, 6);
    assert_eq!(
        mixed.group.member("d").map(|m| m.state),
        Some(MemberState::UnreleasedPartitions)
    );
    assert_eq!(mixed.sync("d", 6), Ok(vec![]));
    assert_eq!(
        mixed.beat("d", 6),
        GroupError::None,
        "nothing to collect yet"
    );
    // "a" hands its partition over; "d" still waits for the one "b" holds.
    mixed.join("a", &[], 0).expect("joins");
    assert_eq!(
        mixed.beat("d", 6),
        GroupError::None,
        "still waiting for b's"
    );
    mixed.join("b", &[], 0).expect("joins");
    // Both free: it is told to rejoin, and collects them.
    assert_eq!(mixed.beat("d", 6), GroupError::RebalanceInProgress);
    mixed.join("d", &[], 0).expect("rejoins");
    assert_eq!(mixed.sync("d", 6).map(|p| p.len()), Ok(2));
    assert_eq!(mixed.group.state(), ConsumerGroupState::Stable);
    mixed.check();
    // A full group takes no one else.
    mixed.settings.max_size = 3;
    assert_eq!(
        mixed.join("e", &[], 0).map(|_| ()).map_err(|r| r.error),
        Err(GroupError::GroupMaxSizeReached)
    );
}

#[test]
fn an_offset_fetch_naming_a_member_is_checked_against_its_epoch() {
    let mut mixed = Mixed::upgraded();
    mixed.heartbeat("c", JOIN_EPOCH, &[]);
    let g = &mixed.group;
    let cases = [
        ("an admin tool names no member", "", -1, GroupError::None),
        ("a consumer member at its epoch", "c", 6, GroupError::None),
        (
            "a consumer member behind",
            "c",
            5,
            GroupError::StaleMemberEpoch,
        ),
        (
            "a classic member at its generation",
            "a",
            5,
            GroupError::None,
        ),
        (
            "a classic member behind",
            "a",
            4,
            GroupError::IllegalGeneration,
        ),
        ("no such member", "x", 1, GroupError::UnknownMemberId),
        (
            "an epoch without a member",
            "",
            3,
            GroupError::UnknownMemberId,
        ),
    ];
    for (what, member, epoch, want) in cases {
        assert_eq!(g.validate_offset_fetch(member, epoch), want, "{what}");
    }
}

#[test]
fn a_classic_static_member_replacing_the_last_consumer_member_turns_the_group_classic() {
    let mut mixed = Mixed::upgraded();
    let req = HeartbeatRequest {
        member_id: "c".into(),
        member_epoch: JOIN_EPOCH,
        instance_id: Some("i-c".into()),
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..HeartbeatRequest::default()
    };
    let d = mixed
        .group
        .heartbeat(&req, &mixed.topics, &mixed.settings, 0)
        .expect("joins");
    mixed.commit(&d, 0);
    let restarted = |member_id: &str, unknown_member: bool, instance: &str| ClassicJoin {
        member_id: member_id.into(),
        instance_id: Some(instance.into()),
        client_id: "rdkafka".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(&[]))],
        unknown_member,
        ..ClassicJoin::default()
    };
    let (s, t) = (mixed.settings, &mixed.topics);
    let down = mixed
        .group
        .downgrade_replacing(&restarted("c2", true, "i-c"), &s, 100, t, 0)
        .expect("downgrades");
    let classic = &down.classic;
    assert_eq!(classic.generation, 6);
    assert_eq!(
        classic.leader.as_deref(),
        Some("a"),
        "a member already there leads"
    );
    let ids: Vec<&str> = classic
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(ids, vec!["a", "b", "c2"]);
    let c2 = &classic.members[2];
    assert_eq!(c2.group_instance_id.as_deref(), Some("i-c"));
    let named = decode_assignment(&c2.assignment).expect("decodes");
    assert_eq!(
        by_id(&named, t),
        *mixed.group.target("c").expect("c's target"),
        "c's share"
    );
    // Not for a member id the group gave, nor against the policy, nor for another instance.
    assert!(
        mixed
            .group
            .downgrade_replacing(&restarted("c2", false, "i-c"), &s, 100, t, 0)
            .is_none()
    );
    let upgrade_only = ConsumerGroupSettings {
        migration_policy: MigrationPolicy::Upgrade,
        ..s
    };
    assert!(
        mixed
            .group
            .downgrade_replacing(&restarted("c2", true, "i-c"), &upgrade_only, 100, t, 0)
            .is_none()
    );
    assert!(
        mixed
            .group
            .downgrade_replacing(&restarted("z", true, "i-z"), &s, 100, t, 0)
            .is_none()
    );
    // A member id the group gave with an instance it does not know is UNKNOWN_MEMBER_ID.
    let refused = mixed
        .group
        .classic_join(&restarted("zz", false, "i-z"), t, &s, 0)
        .map(|_| ());
    assert_eq!(
        refused.map_err(|r| r.error),
        Err(GroupError::UnknownMemberId)
    );
}
