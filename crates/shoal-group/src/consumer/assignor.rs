//! The server-side assignors of the new consumer group protocol (KIP-848): `uniform` (the
//! default) and `range`, as pure functions of the members, their subscriptions, their current
//! target assignments and the partition counts — Kafka 4.x's `UniformAssignor` and
//! `RangeAssignor`.
//!
//! **Why on the server.** In the classic protocol a client leader computes the assignment and
//! every member stops at the JoinGroup/SyncGroup barrier until it is handed out. Under KIP-848
//! the coordinator computes the target assignment itself and each member converges to it
//! through its own heartbeats, so there is no group-wide barrier and no client-side assignor
//! to trust or upgrade.
//!
//! **What stickiness buys.** A partition that changes owner must first be revoked by the old
//! owner (commit, stop fetching) before the new one may take it; partitions that stay put keep
//! flowing throughout. So `uniform` keeps every member's current partitions as far as balance
//! allows: when a member joins only its share moves, when one leaves only its partitions move.
//! `range` (like Kafka's since 3.9, KAFKA-16944) recomputes contiguous ranges every time
//! instead: it trades stickiness for co-partitioning (partition `i` of equally sized topics
//! lands on the same member, which joins rely on).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use uuid::Uuid;

/// A member's partitions, by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A server-side assignor, as named in `ConsumerGroupHeartbeat.ServerAssignor` and
/// `group.consumer.assignors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorName {
    Uniform,
    Range,
}

impl AssignorName {
    /// Every assignor, the default first (Kafka's `group.consumer.assignors` order).
    pub const ALL: [AssignorName; 2] = [AssignorName::Uniform, AssignorName::Range];

    pub fn as_str(self) -> &'static str {
        match self {
            AssignorName::Uniform => "uniform",
            AssignorName::Range => "range",
        }
    }

    /// The assignor with this exact name (Kafka looks names up case-sensitively).
    pub fn parse(name: &str) -> Option<AssignorName> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One member as the assignor sees it.
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// Topic ids the member subscribes to that exist (unknown names already dropped).
    pub subscribed: &'a BTreeSet<Uuid>,
    /// The member's current *target* assignment (what the previous run gave it), for stickiness.
    pub current: &'a Assignment,
}

/// The new target assignment of every member (every member in `members` gets an entry, possibly
/// empty). `topics`: partition count of each topic id that exists (a negative count counts as 0).
///
/// Deterministic: the same inputs in any member order give the same output. Member ids are
/// expected to be unique; should one repeat, only its first occurrence counts.
pub fn assign(
    name: AssignorName,
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let group = Group::new(members, topics);
    let assignments = match name {
        AssignorName::Uniform if group.is_homogeneous() => uniform_homogeneous(&group),
        AssignorName::Uniform => uniform_heterogeneous(&group),
        AssignorName::Range => range(&group),
    };
    group
        .member_ids
        .iter()
        .map(|id| (*id).to_string())
        .zip(assignments)
        .collect()
}

/// The inputs normalised once: members by index in id order, and only topics that exist, have
/// partitions and have a subscriber.
struct Group<'a> {
    member_ids: Vec<&'a str>,
    /// Each member's subscriptions that can be assigned, ascending.
    subscriptions: Vec<Vec<Uuid>>,
    currents: Vec<&'a Assignment>,
    /// Partition count (> 0) of each topic with at least one subscriber.
    counts: BTreeMap<Uuid, i32>,
    /// Each topic's subscribers, ascending by member index (so by member id).
    subscribers: BTreeMap<Uuid, Vec<usize>>,
}

impl<'a> Group<'a> {
    fn new(members: &[AssignorMember<'a>], topics: &BTreeMap<Uuid, i32>) -> Group<'a> {
        // Sorting by id is what makes the result independent of the caller's order.
        let mut sorted: Vec<&AssignorMember<'a>> = members.iter().collect();
        sorted.sort_by(|a, b| a.member_id.cmp(b.member_id));
        sorted.dedup_by(|later, first| later.member_id == first.member_id);

        let mut group = Group {
            member_ids: Vec::with_capacity(sorted.len()),
            subscriptions: Vec::with_capacity(sorted.len()),
            currents: Vec::with_capacity(sorted.len()),
            counts: BTreeMap::new(),
            subscribers: BTreeMap::new(),
        };
        for (index, member) in sorted.into_iter().enumerate() {
            // A topic without partitions has nothing to assign; dropping it here also keeps
            // it from making otherwise equal subscriptions look different.
            let subscribed: Vec<Uuid> = member
                .subscribed
                .iter()
                .copied()
                .filter(|t| topics.get(t).is_some_and(|&n| n > 0))
                .collect();
            for &topic in &subscribed {
                if let Some(&count) = topics.get(&topic) {
                    group.counts.insert(topic, count);
                }
                group.subscribers.entry(topic).or_default().push(index);
            }
            group.member_ids.push(member.member_id);
            group.subscriptions.push(subscribed);
            group.currents.push(member.current);
        }
        group
    }

    fn len(&self) -> usize {
        self.member_ids.len()
    }

    fn is_homogeneous(&self) -> bool {
        self.subscriptions.windows(2).all(|w| w[0] == w[1])
    }

    /// The member's current partitions that it may keep: topic still subscribed (and so
    /// existing), index still below the partition count.
    fn valid_current(&self, member: usize) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        let subscribed = self
            .subscriptions
            .get(member)
            .map_or(&[][..], Vec::as_slice);
        let current = self.currents.get(member).copied();
        current.into_iter().flat_map(move |current| {
            current
                .iter()
                .filter(move |(topic, _)| subscribed.binary_search(topic).is_ok())
                .flat_map(move |(topic, partitions)| {
                    let count = self.counts.get(topic).copied().unwrap_or(0);
                    partitions.range(0..count).map(move |&p| (*topic, p))
                })
        })
    }

    /// Topics ordered as Kafka's heterogeneous uniform builder does, hardest to balance first:
    /// partitions per subscriber descending, then fewer subscribers, then topic id.
    fn sorted_topics(&self, topics: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
        let weight = |t: &Uuid| {
            let partitions = self.counts.get(t).copied().unwrap_or(0).max(0) as u128;
            let subscribers = self.subscribers.get(t).map_or(0, Vec::len) as u128;
            (partitions, subscribers)
        };
        let mut sorted: Vec<Uuid> = topics.collect();
        sorted.sort_by(|a, b| {
            let (pa, sa) = weight(a);
            let (pb, sb) = weight(b);
            // pa/sa > pb/sb without floats or division by zero.
            (pb * sa).cmp(&(pa * sb)).then(sa.cmp(&sb)).then(a.cmp(b))
        });
        sorted
    }
}

/// Which partitions of each topic are taken, one flag per partition.
struct Claims(BTreeMap<Uuid, Vec<bool>>);

impl Claims {
    fn new(counts: &BTreeMap<Uuid, i32>) -> Claims {
        Claims(
            counts
                .iter()
                .map(|(&t, &n)| (t, vec![false; usize::try_from(n).unwrap_or(0)]))
                .collect(),
        )
    }

    fn slot(&mut self, topic: Uuid, partition: i32) -> Option<&mut bool> {
        let index = usize::try_from(partition).ok()?;
        self.0.get_mut(&topic)?.get_mut(index)
    }

    /// Takes the partition; false if it was taken already (two members claiming it).
    fn claim(&mut self, topic: Uuid, partition: i32) -> bool {
        match self.slot(topic, partition) {
            Some(taken) if !*taken => {
                *taken = true;
                true
            }
            _ => false,
        }
    }

    fn release(&mut self, topic: Uuid, partition: i32) {
        if let Some(taken) = self.slot(topic, partition) {
            *taken = false;
        }
    }

    /// Every untaken partition, in (topic, partition) order.
    fn unclaimed(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.0.iter().flat_map(|(&topic, taken)| {
            (0..i32::MAX)
                .zip(taken)
                .filter(|(_, taken)| !**taken)
                .map(move |(p, _)| (topic, p))
        })
    }
}

fn add(assignment: &mut Assignment, topic: Uuid, partition: i32) {
    assignment.entry(topic).or_default().insert(partition);
}

/// Every member subscribes to the same topics: P partitions over M members, each gets
/// floor(P/M) or ceil(P/M). A member keeps its current partitions up to its quota, and the
/// ceil quotas go first to members that already hold more than the floor, so that nothing
/// moves that balance does not require.
fn uniform_homogeneous(group: &Group<'_>) -> Vec<Assignment> {
    let members = group.len();
    let mut out = vec![Assignment::new(); members];
    if members == 0 || group.counts.is_empty() {
        return out;
    }

    let mut claims = Claims::new(&group.counts);
    let owned: Vec<Vec<(Uuid, i32)>> = (0..members)
        .map(|m| {
            group
                .valid_current(m)
                .filter(|&(t, p)| claims.claim(t, p))
                .collect()
        })
        .collect();

    let total: usize = group
        .counts
        .values()
        .map(|&n| usize::try_from(n).unwrap_or(0))
        .sum();
    let floor = total / members;
    let mut extra = total % members;
    let mut quotas = vec![floor; members];
    for (quota, owned) in quotas.iter_mut().zip(&owned) {
        if extra > 0 && owned.len() > floor {
            *quota += 1;
            extra -= 1;
        }
    }
    for quota in &mut quotas {
        if extra > 0 && *quota == floor {
            *quota += 1;
            extra -= 1;
        }
    }

    for ((assignment, owned), &quota) in out.iter_mut().zip(&owned).zip(&quotas) {
        let (kept, revoked) = owned.split_at(quota.min(owned.len()));
        for &(t, p) in kept {
            add(assignment, t, p);
        }
        for &(t, p) in revoked {
            claims.release(t, p);
        }
    }

    // The quotas sum to P and each member kept at most its quota, so the unclaimed partitions
    // fill the remaining quotas exactly.
    let mut unclaimed = claims.unclaimed();
    for ((assignment, owned), &quota) in out.iter_mut().zip(&owned).zip(&quotas) {
        let missing = quota.saturating_sub(owned.len());
        for (t, p) in unclaimed.by_ref().take(missing) {
            add(assignment, t, p);
        }
    }
    out
}

/// Kafka's limit on balancing rounds for overlapping subscriptions: each round roughly halves
/// the imbalance, and a round without moves ends it sooner.
const MAX_BALANCE_ROUNDS: usize = 16;

/// Members subscribe to different topics: keep every valid current partition, hand the
/// unassigned ones to the least-loaded subscriber, then per topic move partitions from its
/// most-loaded subscriber holding one to its least-loaded subscriber while they differ by two
/// or more (as Kafka's heterogeneous builder; balanced as far as the subscriptions allow).
fn uniform_heterogeneous(group: &Group<'_>) -> Vec<Assignment> {
    let members = group.len();
    let mut out = vec![Assignment::new(); members];
    let mut load = vec![0usize; members];

    let mut claims = Claims::new(&group.counts);
    for (m, (assignment, load)) in out.iter_mut().zip(&mut load).enumerate() {
        for (t, p) in group.valid_current(m) {
            if claims.claim(t, p) {
                add(assignment, t, p);
                *load += 1;
            }
        }
    }

    let mut unclaimed: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for (t, p) in claims.unclaimed() {
        unclaimed.entry(t).or_default().push(p);
    }
    for topic in group.sorted_topics(unclaimed.keys().copied()) {
        let subscribers = group.subscribers.get(&topic).map_or(&[][..], Vec::as_slice);
        let mut least_loaded: BinaryHeap<Reverse<(usize, usize)>> =
            subscribers.iter().map(|&m| Reverse((load[m], m))).collect();
        for &p in unclaimed.get(&topic).map_or(&[][..], Vec::as_slice) {
            let Some(Reverse((l, m))) = least_loaded.pop() else {
                break;
            };
            add(&mut out[m], topic, p);
            load[m] = l + 1;
            least_loaded.push(Reverse((l + 1, m)));
        }
    }

    let movable = group.sorted_topics(
        group
            .subscribers
            .iter()
            .filter(|(_, s)| s.len() >= 2)
            .map(|(t, _)| *t),
    );
    for _ in 0..MAX_BALANCE_ROUNDS {
        let mut moved = 0;
        for &topic in &movable {
            moved += balance_topic(group, topic, &mut out, &mut load);
        }
        if moved == 0 {
            break;
        }
    }
    out
}

/// Moves partitions of `topic` from its most-loaded subscriber that holds one to its
/// least-loaded subscriber until no such move narrows the gap. Returns how many moved.
fn balance_topic(
    group: &Group<'_>,
    topic: Uuid,
    out: &mut [Assignment],
    load: &mut [usize],
) -> usize {
    let subscribers = group.subscribers.get(&topic).map_or(&[][..], Vec::as_slice);
    let holds = |a: &Assignment| a.get(&topic).is_some_and(|s| !s.is_empty());
    let mut receivers: BTreeSet<(usize, usize)> =
        subscribers.iter().map(|&m| (load[m], m)).collect();
    let mut givers: BTreeSet<(usize, usize)> = subscribers
        .iter()
        .filter(|&&m| holds(&out[m]))
        .map(|&m| (load[m], m))
        .collect();

    // A receiver ends at most one above the minimum, which never falls, so it never gives in
    // the same pass: each partition moves at most once and the topic's count bounds the loop.
    let limit = group
        .counts
        .get(&topic)
        .map_or(0, |&n| usize::try_from(n).unwrap_or(0));
    let mut moved = 0;
    while moved < limit {
        let (Some(&(high, giver)), Some(&(low, receiver))) = (givers.last(), receivers.first())
        else {
            break;
        };
        if high < low + 2 {
            break;
        }
        let partition = out[giver].get_mut(&topic).and_then(BTreeSet::pop_last);
        let Some(partition) = partition else {
            givers.remove(&(high, giver));
            continue;
        };
        if !holds(&out[giver]) {
            out[giver].remove(&topic);
        }
        add(&mut out[receiver], topic, partition);

        givers.remove(&(high, giver));
        receivers.remove(&(high, giver));
        load[giver] = high - 1;
        receivers.insert((high - 1, giver));
        if holds(&out[giver]) {
            givers.insert((high - 1, giver));
        }

        givers.remove(&(low, receiver));
        receivers.remove(&(low, receiver));
        load[receiver] = low + 1;
        receivers.insert((low + 1, receiver));
        givers.insert((low + 1, receiver));
        moved += 1;
    }
    moved
}

/// Per topic, its subscribers in member-id order get contiguous ranges, the first P % M one
/// partition more. Like Kafka 4.x, current assignments are not consulted: recomputing keeps
/// equally sized topics co-partitioned, which stickiness would break.
fn range(group: &Group<'_>) -> Vec<Assignment> {
    let mut out = vec![Assignment::new(); group.len()];
    for (&topic, subscribers) in &group.subscribers {
        let count = group.counts.get(&topic).copied().unwrap_or(0);
        let partitions = usize::try_from(count).unwrap_or(0);
        let members = subscribers.len().max(1);
        let (floor, extra) = (partitions / members, partitions % members);
        let mut next = 0..count;
        for (rank, &m) in subscribers.iter().enumerate() {
            let quota = floor + usize::from(rank < extra);
            let range: BTreeSet<i32> = next.by_ref().take(quota).collect();
            if !range.is_empty() {
                out[m].insert(topic, range);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// A member's data, owned, for building `AssignorMember`s.
    #[derive(Clone)]
    struct Spec {
        id: String,
        subscribed: BTreeSet<Uuid>,
        current: Assignment,
    }

    fn spec(id: &str, subscribed: &[u128]) -> Spec {
        Spec {
            id: id.to_string(),
            subscribed: subscribed.iter().map(|&n| t(n)).collect(),
            current: Assignment::new(),
        }
    }

    fn with_current(mut s: Spec, current: &[(u128, &[i32])]) -> Spec {
        s.current = current
            .iter()
            .map(|(n, ps)| (t(*n), ps.iter().copied().collect()))
            .collect();
        s
    }

    fn topics(counts: &[(u128, i32)]) -> BTreeMap<Uuid, i32> {
        counts.iter().map(|&(n, c)| (t(n), c)).collect()
    }

    fn run(
        name: AssignorName,
        specs: &[Spec],
        topics: &BTreeMap<Uuid, i32>,
    ) -> BTreeMap<String, Assignment> {
        let members: Vec<AssignorMember<'_>> = specs
            .iter()
            .map(|s| AssignorMember {
                member_id: &s.id,
                subscribed: &s.subscribed,
                current: &s.current,
            })
            .collect();
        assign(name, &members, topics)
    }

    /// Feeds a previous result back as the members' current assignments.
    fn carry(specs: &[Spec], previous: &BTreeMap<String, Assignment>) -> Vec<Spec> {
        specs
            .iter()
            .map(|s| Spec {
                current: previous.get(&s.id).cloned().unwrap_or_default(),
                ..s.clone()
            })
            .collect()
    }

    fn size(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    fn loads(out: &BTreeMap<String, Assignment>) -> BTreeMap<String, usize> {
        out.iter().map(|(m, a)| (m.clone(), size(a))).collect()
    }

    fn owners(out: &BTreeMap<String, Assignment>) -> BTreeMap<(Uuid, i32), String> {
        let mut owners = BTreeMap::new();
        for (m, a) in out {
            for (&topic, ps) in a {
                for &p in ps {
                    owners.insert((topic, p), m.clone());
                }
            }
        }
        owners
    }

    /// Partitions owned in both runs that changed owner, plus partitions of `before` owners that
    /// went to someone else (a departed member's partitions count as moved).
    fn moved(before: &BTreeMap<String, Assignment>, after: &BTreeMap<String, Assignment>) -> usize {
        let after = owners(after);
        owners(before)
            .iter()
            .filter(|(tp, m)| after.get(tp).is_some_and(|now| now != *m))
            .count()
    }

    fn parts(a: &Assignment, topic: u128) -> Vec<i32> {
        a.get(&t(topic))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every member has an entry; each subscribed partition goes to exactly one subscriber;
    /// nothing else is assigned.
    fn check_invariants(
        specs: &[Spec],
        topics: &BTreeMap<Uuid, i32>,
        out: &BTreeMap<String, Assignment>,
        context: &str,
    ) {
        let ids: BTreeSet<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        let out_ids: BTreeSet<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(ids, out_ids, "{context}: one entry per member");

        let mut seen: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
        for s in specs {
            let a = &out[&s.id];
            for (topic, ps) in a {
                assert!(!ps.is_empty(), "{context}: no empty topic entries");
                assert!(
                    s.subscribed.contains(topic),
                    "{context}: {} got unsubscribed topic {topic}",
                    s.id
                );
                let count = topics.get(topic).copied().unwrap_or(0);
                for &p in ps {
                    assert!(
                        (0..count).contains(&p),
                        "{context}: {topic}-{p} does not exist"
                    );
                    *seen.entry((*topic, p)).or_default() += 1;
                }
            }
        }
        for (&topic, &count) in topics {
            let subscribed = specs.iter().any(|s| s.subscribed.contains(&topic));
            for p in 0..count {
                let times = seen.get(&(topic, p)).copied().unwrap_or(0);
                let expected = usize::from(subscribed);
                assert_eq!(
                    times, expected,
                    "{context}: {topic}-{p} assigned {times} times"
                );
            }
        }
    }

    fn spread(out: &BTreeMap<String, Assignment>) -> usize {
        let l: Vec<usize> = out.values().map(size).collect();
        l.iter().max().unwrap_or(&0) - l.iter().min().unwrap_or(&0)
    }

    /// No single move of a partition to another subscriber of its topic narrows the gap.
    fn check_locally_balanced(specs: &[Spec], out: &BTreeMap<String, Assignment>, context: &str) {
        for giver in specs {
            for topic in out[&giver.id].keys() {
                for receiver in specs.iter().filter(|s| s.subscribed.contains(topic)) {
                    let (g, r) = (size(&out[&giver.id]), size(&out[&receiver.id]));
                    assert!(
                        g <= r + 1,
                        "{context}: {} ({g}) could give {topic} to {} ({r})",
                        giver.id,
                        receiver.id
                    );
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_uniform_is_the_default() {
        assert_eq!(AssignorName::ALL[0], AssignorName::Uniform);
        for name in AssignorName::ALL {
            assert_eq!(AssignorName::parse(name.as_str()), Some(name));
        }
        assert_eq!(AssignorName::Uniform.as_str(), "uniform");
        assert_eq!(AssignorName::Range.as_str(), "range");
        for unknown in ["", "Uniform", "RANGE", "sticky", "uniform "] {
            assert_eq!(AssignorName::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn three_members_six_partitions_get_two_each() {
        let specs = [spec("a", &[1]), spec("b", &[1]), spec("c", &[1])];
        let topics = topics(&[(1, 6)]);
        let cases: [(AssignorName, [&[i32]; 3]); 2] = [
            (AssignorName::Uniform, [&[0, 1], &[2, 3], &[4, 5]]),
            (AssignorName::Range, [&[0, 1], &[2, 3], &[4, 5]]),
        ];
        for (name, expected) in cases {
            let out = run(name, &specs, &topics);
            check_invariants(&specs, &topics, &out, name.as_str());
            for (s, want) in specs.iter().zip(expected) {
                assert_eq!(parts(&out[&s.id], 1), want, "{name:?} {}", s.id);
            }
        }
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_to_the_first_members() {
        // (partitions, members, expected ranges in member-id order)
        let cases: &[(i32, usize, &[&[i32]])] = &[
            (7, 3, &[&[0, 1, 2], &[3, 4], &[5, 6]]),
            (8, 3, &[&[0, 1, 2], &[3, 4, 5], &[6, 7]]),
            (2, 3, &[&[0], &[1], &[]]),
            (0, 2, &[&[], &[]]),
            (-3, 2, &[&[], &[]]),
            (5, 1, &[&[0, 1, 2, 3, 4]]),
        ];
        for &(count, members, expected) in cases {
            // Given in reverse id order: ranges follow ids, not input order.
            let specs: Vec<Spec> = (0..members)
                .rev()
                .map(|i| spec(&format!("m{i}"), &[1]))
                .collect();
            let topics = topics(&[(1, count)]);
            let out = run(AssignorName::Range, &specs, &topics);
            check_invariants(&specs, &topics, &out, &format!("{count}/{members}"));
            for (i, want) in expected.iter().enumerate() {
                assert_eq!(
                    parts(&out[&format!("m{i}")], 1),
                    *want,
                    "{count}/{members} m{i}"
                );
            }
        }
    }

    #[test]
    fn range_co_partitions_and_recomputes_ignoring_current() {
        let topics = topics(&[(1, 4), (2, 4)]);
        let fresh = [spec("a", &[1, 2]), spec("b", &[1, 2])];
        let scrambled = [
            with_current(spec("a", &[1, 2]), &[(1, &[3]), (2, &[0, 1, 2])]),
            with_current(spec("b", &[1, 2]), &[(1, &[0, 1, 2]), (2, &[3])]),
        ];
        let expected = run(AssignorName::Range, &fresh, &topics);
        assert_eq!(run(AssignorName::Range, &scrambled, &topics), expected);
        // Partition i of both topics on the same member.
        for a in expected.values() {
            assert_eq!(parts(a, 1), parts(a, 2));
        }
        assert_eq!(parts(&expected["a"], 1), [0, 1]);
    }

    #[test]
    fn range_splits_each_topic_among_its_own_subscribers() {
        let specs = [spec("a", &[1]), spec("b", &[1, 2]), spec("c", &[2])];
        let topics = topics(&[(1, 3), (2, 5)]);
        let out = run(AssignorName::Range, &specs, &topics);
        check_invariants(&specs, &topics, &out, "range heterogeneous");
        assert_eq!(parts(&out["a"], 1), [0, 1]);
        assert_eq!(parts(&out["b"], 1), [2]);
        assert_eq!(parts(&out["b"], 2), [0, 1, 2]);
        assert_eq!(parts(&out["c"], 2), [3, 4]);
    }

    #[test]
    fn uniform_member_join_moves_only_the_new_members_share() {
        // (members before the join, partitions per topic)
        let cases: &[(usize, &[(u128, i32)])] = &[
            (3, &[(1, 6)]),
            (3, &[(1, 12)]),
            (3, &[(1, 7)]),
            (2, &[(1, 5), (2, 4)]),
            (5, &[(1, 3)]),
            (1, &[(1, 1)]),
        ];
        // The newcomer's id sorting last or first must not matter: the extra partitions stay
        // with members that already hold them.
        for newcomer in ["new", "0-new"] {
            for &(before, counts) in cases {
                let topics = topics(counts);
                let subs: Vec<u128> = counts.iter().map(|&(n, _)| n).collect();
                let total: usize = counts.iter().map(|&(_, c)| c as usize).sum();
                let old: Vec<Spec> = (0..before).map(|i| spec(&format!("m{i}"), &subs)).collect();
                let first = run(AssignorName::Uniform, &old, &topics);

                let mut joined = carry(&old, &first);
                joined.push(spec(newcomer, &subs));
                let second = run(AssignorName::Uniform, &joined, &topics);
                let context = format!("{newcomer} joins {before} members, {counts:?}");
                check_invariants(&joined, &topics, &second, &context);
                assert!(spread(&second) <= 1, "{context}: balanced");

                let floor = total / (before + 1);
                for s in &old {
                    let kept = first[&s.id]
                        .iter()
                        .flat_map(|(topic, ps)| ps.iter().map(move |p| (topic, p)))
                        .filter(|(topic, p)| {
                            second[&s.id].get(*topic).is_some_and(|now| now.contains(p))
                        })
                        .count();
                    assert!(
                        kept >= floor.min(size(&first[&s.id])),
                        "{context}: {} kept {kept}",
                        s.id
                    );
                }
                let share = size(&second[newcomer]);
                assert_eq!(
                    share, floor,
                    "{context}: the newcomer takes the floor share"
                );
                assert_eq!(
                    moved(&first, &second),
                    share,
                    "{context}: only its share moved"
                );
            }
        }
    }

    #[test]
    fn uniform_member_leave_moves_only_its_partitions() {
        let cases: &[(usize, &[(u128, i32)])] = &[
            (4, &[(1, 6)]),
            (4, &[(1, 12)]),
            (3, &[(1, 7)]),
            (3, &[(1, 5), (2, 4)]),
            (2, &[(1, 1)]),
        ];
        for &(before, counts) in cases {
            let topics = topics(counts);
            let subs: Vec<u128> = counts.iter().map(|&(n, _)| n).collect();
            let all: Vec<Spec> = (0..before).map(|i| spec(&format!("m{i}"), &subs)).collect();
            let first = run(AssignorName::Uniform, &all, &topics);

            let leaver = "m1";
            let stay: Vec<Spec> = carry(&all, &first)
                .into_iter()
                .filter(|s| s.id != leaver)
                .collect();
            let second = run(AssignorName::Uniform, &stay, &topics);
            let context = format!("{before} members, {counts:?}");
            check_invariants(&stay, &topics, &second, &context);
            assert!(spread(&second) <= 1, "{context}: balanced");
            for s in &stay {
                for (topic, ps) in &first[&s.id] {
                    let now = second[&s.id].get(topic).cloned().unwrap_or_default();
                    assert!(ps.is_subset(&now), "{context}: {} lost a partition", s.id);
                }
            }
            assert_eq!(moved(&first, &second), size(&first[leaver]), "{context}");
        }
    }

    #[test]
    fn uniform_heterogeneous_is_balanced_as_subscriptions_allow() {
        // A subscribes t1, B t1+t2, C t2. (t1 count, t2 count, expected loads of A, B, C)
        let cases: &[(i32, i32, [usize; 3])] = &[
            (3, 3, [2, 2, 2]),
            (4, 2, [2, 2, 2]),
            (2, 4, [2, 2, 2]),
            (6, 0, [3, 3, 0]),
            (0, 5, [0, 3, 2]),
            (1, 8, [1, 4, 4]),
            (9, 1, [5, 4, 1]),
        ];
        for &(c1, c2, expected) in cases {
            let specs = [spec("a", &[1]), spec("b", &[1, 2]), spec("c", &[2])];
            let topics = topics(&[(1, c1), (2, c2)]);
            let context = format!("t1={c1} t2={c2}");
            let out = run(AssignorName::Uniform, &specs, &topics);
            check_invariants(&specs, &topics, &out, &context);
            check_locally_balanced(&specs, &out, &context);
            let got = [size(&out["a"]), size(&out["b"]), size(&out["c"])];
            assert_eq!(got, expected, "{context}");
            // Sticky: a rerun on its own output changes nothing.
            let again = run(AssignorName::Uniform, &carry(&specs, &out), &topics);
            assert_eq!(again, out, "{context}: stable");
        }
    }

    #[test]
    fn uniform_heterogeneous_join_moves_little() {
        let topics = topics(&[(1, 6), (2, 6)]);
        let specs = [spec("a", &[1]), spec("b", &[1, 2]), spec("c", &[2])];
        let first = run(AssignorName::Uniform, &specs, &topics);
        let mut joined = carry(&specs, &first);
        joined.push(spec("d", &[1, 2]));
        let second = run(AssignorName::Uniform, &joined, &topics);
        check_invariants(&joined, &topics, &second, "join");
        check_locally_balanced(&joined, &second, "join");
        assert_eq!(size(&second["d"]), 3);
        assert_eq!(moved(&first, &second), 3, "only the newcomer's share moves");
    }

    #[test]
    fn stale_current_partitions_are_dropped() {
        // t1 shrank to 3 partitions, t9 was deleted, a no longer subscribes to t2.
        let topics = topics(&[(1, 3), (2, 2)]);
        let specs = [
            with_current(
                spec("a", &[1]),
                &[(1, &[-1, 1, 5]), (2, &[0]), (9, &[0, 1])],
            ),
            with_current(spec("b", &[1, 2]), &[(1, &[7]), (9, &[2])]),
        ];
        for name in AssignorName::ALL {
            let out = run(name, &specs, &topics);
            check_invariants(&specs, &topics, &out, name.as_str());
            assert!(
                !out["a"].contains_key(&t(2)),
                "{name:?}: unsubscribed t2 dropped"
            );
            assert!(!out["a"].contains_key(&t(9)) && !out["b"].contains_key(&t(9)));
        }
        let out = run(AssignorName::Uniform, &specs, &topics);
        assert!(
            out["a"][&t(1)].contains(&1),
            "the still valid partition stays"
        );
        assert_eq!(size(&out["a"]) + size(&out["b"]), 5);
    }

    #[test]
    fn duplicate_claims_are_assigned_once() {
        let topics = topics(&[(1, 4)]);
        let specs = [
            with_current(spec("a", &[1]), &[(1, &[0, 1])]),
            with_current(spec("b", &[1]), &[(1, &[1, 2])]),
            with_current(spec("c", &[1, 2]), &[(1, &[1])]),
        ];
        for name in AssignorName::ALL {
            let out = run(name, &specs, &topics);
            check_invariants(&specs, &topics, &out, name.as_str());
        }
        let dupes = [spec("a", &[1]), with_current(spec("a", &[1]), &[(1, &[0])])];
        for name in AssignorName::ALL {
            let out = run(name, &dupes, &topics);
            assert_eq!(out.len(), 1);
            assert_eq!(size(&out["a"]), 4, "{name:?}");
        }
    }

    #[test]
    fn empty_inputs() {
        for name in AssignorName::ALL {
            assert!(run(name, &[], &topics(&[(1, 3)])).is_empty());
            assert!(run(name, &[], &BTreeMap::new()).is_empty());

            let specs = [spec("a", &[1]), spec("b", &[])];
            let out = run(name, &specs, &BTreeMap::new());
            assert_eq!(out.len(), 2);
            assert!(out.values().all(BTreeMap::is_empty), "{name:?}: no topics");

            for count in [0, -1, i32::MIN] {
                let topics = topics(&[(1, count)]);
                let out = run(name, &specs, &topics);
                assert!(
                    out.values().all(BTreeMap::is_empty),
                    "{name:?}: {count} partitions"
                );
            }

            // An empty subscription gets an empty entry; the subscriber gets everything.
            let topics = topics(&[(1, 3)]);
            let out = run(name, &specs, &topics);
            check_invariants(&specs, &topics, &out, name.as_str());
            assert_eq!(parts(&out["a"], 1), [0, 1, 2]);
            assert!(out["b"].is_empty());

            // Nobody subscribes: nothing assigned.
            let idle = [spec("a", &[]), spec("b", &[])];
            assert!(run(name, &idle, &topics).values().all(BTreeMap::is_empty));
        }
    }

    #[test]
    fn deterministic_and_independent_of_member_order() {
        let topics = topics(&[(1, 7), (2, 5), (3, 2)]);
        let specs = vec![
            with_current(spec("m3", &[1, 2]), &[(1, &[0, 1, 2, 3])]),
            spec("m1", &[1, 3]),
            with_current(spec("m2", &[2, 3]), &[(2, &[4]), (3, &[0])]),
            spec("m0", &[1, 2, 3]),
            spec("m4", &[1, 2, 3]),
        ];
        let homogeneous: Vec<Spec> = specs
            .iter()
            .map(|s| Spec {
                subscribed: [t(1), t(2), t(3)].into(),
                ..s.clone()
            })
            .collect();
        for name in AssignorName::ALL {
            for group in [&specs, &homogeneous] {
                let out = run(name, group, &topics);
                assert_eq!(run(name, group, &topics), out, "{name:?}: same twice");
                let mut reversed = group.clone();
                reversed.reverse();
                assert_eq!(run(name, &reversed, &topics), out, "{name:?}: reversed");
                let mut rotated = group.clone();
                rotated.rotate_left(2);
                assert_eq!(run(name, &rotated, &topics), out, "{name:?}: rotated");
            }
        }
    }

    /// A tiny LCG (Knuth's MMIX constants): reproducible cases without a dependency.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n.max(1)
        }
    }

    #[test]
    fn invariants_hold_on_generated_groups() {
        let mut rng = Lcg(0x5_40A1);
        for case in 0..600 {
            let topic_count = rng.below(4) as u128;
            let topics: BTreeMap<Uuid, i32> = (1..=topic_count)
                .map(|n| (t(n), rng.below(10) as i32 - 1))
                .collect();
            let homogeneous = rng.below(2) == 0;
            let shared: BTreeSet<Uuid> = (1..=topic_count + 1)
                .filter(|_| rng.below(3) != 0)
                .map(t)
                .collect();
            let members = rng.below(7);
            let specs: Vec<Spec> = (0..members)
                .map(|i| {
                    let subscribed = if homogeneous {
                        shared.clone()
                    } else {
                        (1..=topic_count + 1)
                            .filter(|_| rng.below(2) == 0)
                            .map(t)
                            .collect()
                    };
                    // Random, possibly stale or conflicting, current assignments.
                    let mut current = Assignment::new();
                    for n in 1..=topic_count + 1 {
                        for p in -1..10 {
                            if rng.below(5) == 0 {
                                add(&mut current, t(n), p);
                            }
                        }
                    }
                    Spec {
                        id: format!("m{}", rng.below(1000) * 10 + i),
                        subscribed,
                        current,
                    }
                })
                .collect();

            for name in AssignorName::ALL {
                let context = format!("case {case} {name:?} homogeneous={homogeneous}");
                let out = run(name, &specs, &topics);
                check_invariants(&specs, &topics, &out, &context);
                let rerun = run(name, &carry(&specs, &out), &topics);
                assert_eq!(rerun, out, "{context}: its own output is a fixpoint");
                match name {
                    AssignorName::Uniform if homogeneous => {
                        assert!(spread(&out) <= 1, "{context}: {:?}", loads(&out));
                    }
                    AssignorName::Uniform => check_locally_balanced(&specs, &out, &context),
                    AssignorName::Range => {
                        for (topic, &count) in &topics {
                            let subs: Vec<&Spec> = specs
                                .iter()
                                .filter(|s| s.subscribed.contains(topic))
                                .collect();
                            let got: Vec<usize> = subs
                                .iter()
                                .map(|s| out[&s.id].get(topic).map_or(0, BTreeSet::len))
                                .collect();
                            let (hi, lo) = (got.iter().max(), got.iter().min());
                            if let (Some(hi), Some(lo)) = (hi, lo) {
                                assert!(hi - lo <= 1, "{context}: {topic} of {count}: {got:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn large_group_completes() {
        let topics: BTreeMap<Uuid, i32> = (1..=20).map(|n| (t(n), 500)).collect();
        let specs: Vec<Spec> = (0..300u128)
            .map(|i| Spec {
                id: format!("member-{i:04}"),
                subscribed: (1..=20).filter(|n| (n + i) % 3 != 0).map(t).collect(),
                current: Assignment::new(),
            })
            .collect();
        for name in AssignorName::ALL {
            let out = run(name, &specs, &topics);
            check_invariants(&specs, &topics, &out, name.as_str());
        }
    }
}
