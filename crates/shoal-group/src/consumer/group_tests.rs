use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::consumer::member::LEAVE_EPOCH;
use crate::replay::OffsetsReplay;

const T: Uuid = Uuid::from_u128(0xA);
const U: Uuid = Uuid::from_u128(0xB);

pub(crate) struct Topics(BTreeMap<String, (Uuid, i32)>);

impl TopicResolver for Topics {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.0.get(name).copied()
    }
    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.0
            .iter()
            .find(|(_, (i, _))| *i == id)
            .map(|(n, _)| n.clone())
    }
    fn matching(&self, regex: &str) -> Option<std::sync::Arc<BTreeSet<String>>> {
        let re = crate::coordinator::compile_subscription(regex).ok()?;
        Some(std::sync::Arc::new(
            self.0.keys().filter(|n| re.is_match(n)).cloned().collect(),
        ))
    }
}

pub(crate) fn topics(entries: &[(&str, Uuid, i32)]) -> Topics {
    Topics(
        entries
            .iter()
            .map(|(n, id, p)| (n.to_string(), (*id, *p)))
            .collect(),
    )
}

/// A client as the coordinator sees it: its id, epoch, and the partitions it consumes.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    instance: Option<String>,
    epoch: i32,
    owned: Assignment,
    subscribed: Vec<String>,
}

impl Client {
    fn new(id: &str, subscribed: &[&str]) -> Self {
        Client {
            id: id.into(),
            instance: None,
            epoch: 0,
            owned: Assignment::new(),
            subscribed: subscribed.iter().map(|s| s.to_string()).collect(),
        }
    }
}

struct Sim {
    group: ConsumerGroup,
    topics: Topics,
    settings: ConsumerGroupSettings,
    now_ms: i64,
    /// Every record written, in order (replayed at the end into a fresh group).
    log: Vec<ConsumerRecord>,
}

impl Sim {
    fn new(topics: Topics) -> Self {
        Sim {
            group: ConsumerGroup::new("g"),
            topics,
            settings: ConsumerGroupSettings::default(),
            now_ms: 0,
            log: Vec::new(),
        }
    }

    fn request(c: &Client) -> HeartbeatRequest {
        let joining = c.epoch == 0;
        HeartbeatRequest {
            member_id: c.id.clone(),
            member_epoch: c.epoch,
            instance_id: c.instance.clone(),
            rebalance_timeout_ms: if joining { 60_000 } else { -1 },
            subscribed_topic_names: joining.then(|| c.subscribed.clone()),
            owned: Some(c.owned.clone()),
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
            ..HeartbeatRequest::default()
        }
    }

    fn write(&mut self, decision: &Decision) {
        self.log.extend(decision.records.iter().cloned());
        self.group.apply(decision, &self.settings, self.now_ms);
        assert!(
            self.group.subscriptions_agree(),
            "subscriber counts drifted"
        );
    }

    /// One heartbeat; the client then consumes what it was given (giving up the rest at once,
    /// as a client's revocation callback does).
    fn beat(&mut self, c: &mut Client) -> Result<(), GroupError> {
        let req = Self::request(c);
        let decision = self
            .group
            .heartbeat(&req, &self.topics, &self.settings, self.now_ms)
            .map_err(|r| r.error)?;
        self.write(&decision);
        c.epoch = decision.member_epoch;
        if let Some(a) = decision.assignment {
            c.owned = a;
        }
        Ok(())
    }

    /// Heartbeats round-robin until nothing changes for a full round (bounded).
    fn settle(&mut self, clients: &mut [Client]) {
        for _ in 0..20 {
            let before: Vec<(i32, Assignment)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            for i in 0..clients.len() {
                let mut c = clients[i].clone();
                self.beat(&mut c).expect("heartbeat");
                clients[i] = c;
                // No partition is ever consumed by two members at once.
                assert_disjoint(owned_by_all(clients));
            }
            let after: Vec<(i32, Assignment)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            if before == after && self.group.state() == ConsumerGroupState::Stable {
                return;
            }
        }
        panic!("the group did not settle: {:?}", self.group.state());
    }
}

fn assert_disjoint(owned: Vec<Assignment>) {
    let mut seen = std::collections::HashSet::new();
    for a in &owned {
        for p in partitions_of(a) {
            assert!(seen.insert(p), "partition {p:?} owned by two members");
        }
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(|p| p.len()).sum()
}

fn owned_by_all(clients: &[Client]) -> Vec<Assignment> {
    clients.iter().map(|c| c.owned.clone()).collect()
}

#[test]
fn three_members_share_six_partitions_and_no_partition_is_ever_owned_twice() {
    let mut sim = Sim::new(topics(&[("t", T, 6)]));
    let mut clients = vec![Client::new("a", &["t"])];
    sim.settle(&mut clients);
    assert_eq!(count(&clients[0].owned), 6);
    for id in ["b", "c"] {
        clients.push(Client::new(id, &["t"]));
        sim.settle(&mut clients);
    }
    for c in &clients {
        assert_eq!(count(&c.owned), 2, "{}", c.id);
        assert_eq!(c.epoch, sim.group.group_epoch());
    }
    assert_disjoint(owned_by_all(&clients));
    assert_eq!(sim.group.group_epoch(), 3, "one bump per join");
}

#[test]
fn a_join_moves_only_the_partitions_the_new_member_needs() {
    let mut sim = Sim::new(topics(&[("t", T, 6)]));
    let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
    sim.settle(&mut clients);
    let before: Vec<Assignment> = owned_by_all(&clients);
    clients.push(Client::new("c", &["t"]));
    sim.settle(&mut clients);
    // a and b each gave up exactly one partition and kept two.
    for (i, c) in clients.iter().take(2).enumerate() {
        let kept = partitions_of(&c.owned)
            .filter(|p| partitions_of(&before[i]).any(|q| q == *p))
            .count();
        assert_eq!(kept, 2, "{} kept its partitions", c.id);
    }
    assert_eq!(count(&clients[2].owned), 2);
}

#[test]
fn a_member_that_leaves_hands_its_partitions_to_the_others() {
    let mut sim = Sim::new(topics(&[("t", T, 6)]));
    let mut clients = vec![
        Client::new("a", &["t"]),
        Client::new("b", &["t"]),
        Client::new("c", &["t"]),
    ];
    sim.settle(&mut clients);
    let epoch = sim.group.group_epoch();
    let leaving = clients.pop().expect("c");
    let req = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..Sim::request(&leaving)
    };
    let decision = sim.group.leave(&req, &sim.topics).expect("leave");
    assert_eq!(decision.member_epoch, LEAVE_EPOCH);
    sim.write(&decision);
    assert_eq!(sim.group.group_epoch(), epoch + 1);
    assert!(sim.group.member("c").is_none());
    sim.settle(&mut clients);
    assert_eq!(count(&clients[0].owned) + count(&clients[1].owned), 6);
    assert_eq!(count(&clients[0].owned), 3);
}

#[test]
fn epochs_are_checked_as_kafka_does() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
    sim.settle(&mut clients);
    let a = clients[0].clone();
    let epoch = a.epoch;
    let beat = |sim: &Sim, epoch: i32, owned: Option<Assignment>| {
        let req = HeartbeatRequest {
            member_epoch: epoch,
            owned,
            ..Sim::request(&a)
        };
        sim.group
            .heartbeat(&req, &sim.topics, &sim.settings, 0)
            .map(|d| d.member_epoch)
            .map_err(|r| r.error)
    };
    // (received epoch, owned, outcome, why)
    let previous = sim.group.member("a").expect("a").previous_member_epoch;
    let mut too_much = a.owned.clone();
    too_much.entry(T).or_default().extend([0, 1, 2, 3]);
    type Case = (
        i32,
        Option<Assignment>,
        Result<i32, GroupError>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (epoch, Some(a.owned.clone()), Ok(epoch), "its own epoch"),
        (
            epoch + 1,
            Some(a.owned.clone()),
            Err(GroupError::FencedMemberEpoch),
            "from the future",
        ),
        (
            previous,
            Some(a.owned.clone()),
            Ok(epoch),
            "the previous one, owning a subset: a lost answer",
        ),
        (
            previous,
            Some(too_much),
            Err(GroupError::FencedMemberEpoch),
            "the previous one, owning more",
        ),
        (
            previous,
            None,
            Err(GroupError::FencedMemberEpoch),
            "the previous one, not saying what it owns",
        ),
        (
            0,
            Some(Assignment::new()),
            Ok(epoch),
            "0: a fenced member rejoins (KAFKA-19233)",
        ),
    ];
    for (received, owned, expect, why) in cases {
        assert_eq!(beat(&sim, received, owned), expect, "{why}");
    }
    let stranger = HeartbeatRequest {
        member_id: "z".into(),
        member_epoch: 3,
        ..HeartbeatRequest::default()
    };
    assert_eq!(
        sim.group
            .heartbeat(&stranger, &sim.topics, &sim.settings, 0)
            .map_err(|r| r.error)
            .err(),
        Some(GroupError::UnknownMemberId)
    );
}

#[test]
fn a_member_whose_session_expires_is_fenced() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
    sim.settle(&mut clients);
    assert_eq!(sim.group.next_deadline_ms(), Some(45_000));
    assert!(sim.group.expired(44_999).is_empty());
    sim.now_ms = 30_000;
    sim.beat(&mut clients[0]).expect("a stays");
    let expired = sim.group.expired(45_000);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0, "b");
    let records = sim.group.fence("b", &sim.topics);
    sim.write(&Decision {
        records,
        ..Decision::default()
    });
    let mut rest = vec![clients[0].clone()];
    sim.settle(&mut rest);
    assert_eq!(count(&rest[0].owned), 4);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    sim.settings.session_timeout_ms = 120_000;
    let mut clients = vec![Client::new("a", &["t"])];
    sim.settle(&mut clients);
    let mut b = Client::new("b", &["t"]);
    sim.beat(&mut b).expect("b joins");
    // a is told to give up two partitions but keeps reporting them.
    let req = HeartbeatRequest {
        owned: Some(clients[0].owned.clone()),
        ..Sim::request(&clients[0])
    };
    let decision = sim
        .group
        .heartbeat(&req, &sim.topics, &sim.settings, sim.now_ms)
        .expect("a");
    sim.write(&decision);
    let a = sim.group.member("a").expect("a");
    assert_eq!(a.state, MemberState::UnrevokedPartitions);
    assert!(sim.group.expired(59_999).is_empty());
    let expired = sim.group.expired(60_000);
    assert!(
        expired
            .iter()
            .any(|(id, why)| id == "a" && why.contains("rebalance")),
        "{expired:?}"
    );
}

#[test]
fn a_static_member_that_leaves_for_a_while_keeps_its_partitions() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    let mut a = Client::new("a1", &["t"]);
    a.instance = Some("i-a".into());
    let mut clients = vec![a, Client::new("b", &["t"])];
    sim.settle(&mut clients);
    let epoch = sim.group.group_epoch();
    let owned = clients[0].owned.clone();
    let req = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        ..Sim::request(&clients[0])
    };
    let decision = sim.group.leave(&req, &sim.topics).expect("static leave");
    sim.write(&decision);
    assert_eq!(sim.group.group_epoch(), epoch, "no rebalance");
    // The same instance under a new member id takes its place and its partitions.
    let mut back = Client::new("a2", &["t"]);
    back.instance = Some("i-a".into());
    sim.beat(&mut back).expect("rejoin");
    assert_eq!(back.owned, owned);
    assert!(sim.group.member("a1").is_none());
    assert_eq!(sim.group.group_epoch(), epoch, "still no rebalance");
    // A third incarnation while a2 holds it: refused.
    let mut third = Client::new("a3", &["t"]);
    third.instance = Some("i-a".into());
    assert_eq!(sim.beat(&mut third), Err(GroupError::UnreleasedInstanceId));
}

#[test]
fn new_partitions_and_topics_are_assigned_at_the_next_heartbeat() {
    let mut sim = Sim::new(topics(&[("t", T, 2)]));
    let mut clients = vec![Client::new("a", &["t", "u"]), Client::new("b", &["t", "u"])];
    sim.settle(&mut clients);
    let epoch = sim.group.group_epoch();
    sim.topics = topics(&[("t", T, 4), ("u", U, 2)]);
    sim.settle(&mut clients);
    assert_eq!(sim.group.group_epoch(), epoch + 1);
    assert_eq!(count(&clients[0].owned) + count(&clients[1].owned), 6);
}

#[test]
fn the_records_written_rebuild_the_same_group() {
    let mut sim = Sim::new(topics(&[("t", T, 6), ("u", U, 3)]));
    let mut clients = vec![
        Client::new("a", &["t"]),
        Client::new("b", &["t", "u"]),
        Client::new("c", &["u"]),
    ];
    sim.settle(&mut clients);
    let leaving = clients.pop().expect("c");
    let req = HeartbeatRequest {
        member_epoch: LEAVE_EPOCH,
        ..Sim::request(&leaving)
    };
    let decision = sim.group.leave(&req, &sim.topics).expect("leave");
    sim.write(&decision);
    sim.settle(&mut clients);
    let mut replay = OffsetsReplay::new();
    for record in &sim.log {
        let (key, value) = record.encode("g");
        replay.apply(&key, value.as_deref());
    }
    let mut loaded = replay.consumer_groups.remove("g").expect("group read back");
    assert_eq!(loaded.drop_incomplete_members(), 0);
    assert_eq!(loaded.group_epoch(), sim.group.group_epoch());
    assert_eq!(loaded.assignment_epoch(), sim.group.assignment_epoch());
    assert_eq!(loaded.state(), ConsumerGroupState::Stable);
    for c in &clients {
        let m = loaded.member(&c.id).expect("member");
        assert_eq!(m, sim.group.member(&c.id).expect("member"));
        assert_eq!(loaded.target(&c.id), sim.group.target(&c.id));
        assert_eq!(m.assigned, c.owned);
    }
    assert!(loaded.member("c").is_none());
    // A deleted group is gone after its tombstones.
    for record in loaded.delete_records() {
        let (key, value) = record.encode("g");
        replay.apply(&key, value.as_deref());
    }
    assert!(!replay.consumer_groups.contains_key("g"));
}

#[test]
fn the_assignor_most_members_ask_for_runs() {
    let mut sim = Sim::new(topics(&[("t", T, 3)]));
    sim.settings.assignors = [Some(AssignorName::Uniform), Some(AssignorName::Range)];
    let member = |id: &str, assignor: Option<&str>| {
        let mut m = ConsumerMember::new(id);
        m.metadata.server_assignor = assignor.map(String::from);
        m
    };
    let g = &sim.group;
    assert_eq!(
        g.assignor(&member("a", None), &sim.settings),
        AssignorName::Uniform
    );
    assert_eq!(
        g.assignor(&member("a", Some("range")), &sim.settings),
        AssignorName::Range
    );
    assert_eq!(
        g.assignor(&member("a", Some("sticky")), &sim.settings),
        AssignorName::Uniform,
        "an unknown name counts for nothing"
    );
    let mut clients = vec![Client::new("a", &["t"])];
    sim.settle(&mut clients);
}

#[test]
fn a_regular_expression_subscribes_to_every_topic_it_matches_whole() {
    let r1 = Uuid::from_u128(0x1);
    let r2 = Uuid::from_u128(0x2);
    let r3 = Uuid::from_u128(0x3);
    let mut sim = Sim::new(topics(&[("r-1", r1, 2), ("r-2", r2, 1), ("xr-1", T, 4)]));
    let mut c = Client::new("a", &[]);
    let req = |c: &Client| HeartbeatRequest {
        subscribed_topic_names: (c.epoch == 0).then(Vec::new),
        subscribed_topic_regex: (c.epoch == 0).then(|| "r-.*".to_string()),
        ..Sim::request(c)
    };
    let decision = sim
        .group
        .heartbeat(&req(&c), &sim.topics, &sim.settings, 0)
        .expect("join");
    sim.write(&decision);
    c.epoch = decision.member_epoch;
    c.owned = decision.assignment.expect("a join gets its assignment");
    assert_eq!(count(&c.owned), 3, "r-1 and r-2, not xr-1: {:?}", c.owned);
    assert!(!c.owned.contains_key(&T));
    // A topic created later that the expression matches is assigned at the next heartbeat.
    let epoch = sim.group.group_epoch();
    sim.topics = topics(&[
        ("r-1", r1, 2),
        ("r-2", r2, 1),
        ("r-3", r3, 2),
        ("xr-1", T, 4),
    ]);
    let decision = sim
        .group
        .heartbeat(&req(&c), &sim.topics, &sim.settings, 0)
        .expect("heartbeat");
    sim.write(&decision);
    assert_eq!(sim.group.group_epoch(), epoch + 1);
    assert_eq!(count(&decision.assignment.expect("changed")), 5);
    assert!(sim.group.subscribed_topics(&sim.topics).contains("r-3"));
}

/// Rebuilds the group from `log` as a loading coordinator would.
fn reload(log: &[ConsumerRecord]) -> ConsumerGroup {
    let mut replay = OffsetsReplay::new();
    for record in log {
        let (key, value) = record.encode("g");
        replay.apply(&key, value.as_deref());
    }
    let mut loaded = replay.consumer_groups.remove("g").expect("group read back");
    loaded.drop_incomplete_members();
    loaded
}

#[test]
fn a_write_that_failed_but_reached_the_log_is_overridden_by_the_next() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    let mut clients = vec![Client::new("a", &["t"]), Client::new("b", &["t"])];
    sim.settle(&mut clients);
    // c's join is appended but its replication times out: the coordinator keeps the group as
    // it was, and the log holds c's records anyway.
    let c = Client::new("c", &["t"]);
    let failed = sim
        .group
        .heartbeat(&Sim::request(&c), &sim.topics, &sim.settings, 0)
        .expect("c joins");
    sim.log.extend(failed.records.iter().cloned());
    sim.group.write_failed(&failed.records);
    assert!(sim.group.member("c").is_none());
    assert!(sim.group.is_unsure());
    // The next write restates the group before its own records.
    let req = Sim::request(&clients[0]);
    let next = sim
        .group
        .heartbeat(&req, &sim.topics, &sim.settings, 0)
        .expect("a heartbeats");
    let restate = sim.group.restate();
    assert!(
        restate.contains(&ConsumerRecord::Member("c".into(), None)),
        "c's records tombstoned: {restate:?}"
    );
    sim.log.extend(restate);
    sim.group.restated();
    sim.write(&next);
    let loaded = reload(&sim.log);
    assert!(
        loaded.member("c").is_none(),
        "the failed join is gone after a reload"
    );
    assert_eq!(loaded.group_epoch(), sim.group.group_epoch());
    for id in ["a", "b"] {
        assert_eq!(loaded.member(id), sim.group.member(id), "{id}");
        assert_eq!(loaded.target(id), sim.group.target(id), "{id}");
    }
}

#[test]
fn a_static_member_leaving_for_a_while_gives_up_what_it_was_revoking() {
    let mut sim = Sim::new(topics(&[("t", T, 4)]));
    let mut a = Client::new("a1", &["t"]);
    a.instance = Some("i-a".into());
    let mut clients = vec![a];
    sim.settle(&mut clients);
    let mut b = Client::new("b", &["t"]);
    sim.beat(&mut b).expect("b joins");
    // a learns it must give up two partitions, then leaves for a while instead.
    let req = Sim::request(&clients[0]);
    let d = sim
        .group
        .heartbeat(&req, &sim.topics, &sim.settings, 0)
        .expect("a");
    sim.write(&d);
    assert_eq!(
        sim.group.member("a1").expect("a1").state,
        MemberState::UnrevokedPartitions
    );
    let leave = HeartbeatRequest {
        member_epoch: STATIC_LEAVE_EPOCH,
        ..Sim::request(&clients[0])
    };
    let d = sim.group.leave(&leave, &sim.topics).expect("static leave");
    sim.write(&d);
    let a = sim.group.member("a1").expect("a1 keeps its place");
    assert!(a.pending_revocation.is_empty());
    assert_eq!(count(&a.assigned), 2);
    // b gets the released partitions at its next heartbeat, and no deadline is left that
    // would wake the timer for nothing.
    sim.beat(&mut b).expect("b");
    assert_eq!(count(&b.owned), 2);
    assert_eq!(sim.group.next_deadline_ms(), Some(45_000));
}
