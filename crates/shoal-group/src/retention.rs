//! Which committed offsets have expired (`offsets.retention.minutes`), as a pure function of
//! one group, its offsets and the time — Kafka's `ClassicGroup.offsetExpirationCondition`.
//!
//! Offsets outlive their consumers on purpose (a consumer fleet can be down for a while and
//! resume), but not forever: once a group has had no members for the retention period, its
//! offsets go, and then the group. While members are active only offsets of topics they no
//! longer subscribe to can expire, and only for a "consumer" group whose subscriptions parse.

use std::collections::HashSet;

use crate::group::{ClassicGroup, GroupState};
use crate::replay::Offsets;

/// The (topic, partition) offsets of `group` that have expired at `now_wall_ms`.
pub fn expired_offsets(
    group: &ClassicGroup,
    offsets: &Offsets,
    now_wall_ms: i64,
    retention_ms: i64,
) -> Vec<(String, i32)> {
    // (base of the retention period: the group's Empty time, or each offset's commit time),
    // and the topics that may expire (None = all).
    let (group_base_ms, subscribed): (Option<i64>, Option<HashSet<String>>) =
        match (group.protocol_type(), group.state()) {
            // A simple group (commits only, nobody ever joined): each offset by its commit time.
            (None, _) => (None, None),
            (Some(_), GroupState::Empty) => (Some(group.state_timestamp_ms()), None),
            (Some("consumer"), GroupState::Stable) => match group.subscribed_topics() {
                Some(topics) => (None, Some(topics)),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
    offsets
        .iter()
        .filter(|((topic, _), _)| subscribed.as_ref().is_none_or(|s| !s.contains(topic)))
        .filter(|(_, stored)| match stored.value.expire_timestamp_ms {
            // Committed with its own retention (OffsetCommit v2-v4): Kafka's old rule.
            Some(expire_at_ms) => now_wall_ms >= expire_at_ms,
            None => {
                let base = match group_base_ms {
                    Some(empty_since) if empty_since > 0 => empty_since,
                    _ => stored.value.commit_timestamp_ms,
                };
                now_wall_ms.saturating_sub(base) >= retention_ms
            }
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// The offsets of a KIP-848 consumer group that have expired (Kafka's
/// `ConsumerGroup.offsetExpirationCondition`): an offset of a topic no member subscribes to,
/// `retention_ms` after its commit (or at its own expire time); those of subscribed topics
/// never.
pub fn expired_consumer_offsets(
    subscribed: &std::collections::BTreeSet<String>,
    offsets: &Offsets,
    now_wall_ms: i64,
    retention_ms: i64,
) -> Vec<(String, i32)> {
    offsets
        .iter()
        .filter(|((topic, _), _)| !subscribed.contains(topic))
        .filter(|(_, stored)| match stored.value.expire_timestamp_ms {
            Some(expire_at_ms) => now_wall_ms >= expire_at_ms,
            None => now_wall_ms.saturating_sub(stored.value.commit_timestamp_ms) >= retention_ms,
        })
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OffsetValue;
    use crate::replay::StoredOffset;

    const DAY_MS: i64 = 86_400_000;

    fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
        entries
            .iter()
            .map(|(t, p, committed_at)| {
                (
                    (t.to_string(), *p),
                    StoredOffset {
                        value: OffsetValue {
                            offset: 1,
                            leader_epoch: -1,
                            metadata: String::new(),
                            commit_timestamp_ms: *committed_at,
                            expire_timestamp_ms: None,
                        },
                        record_offset: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_simple_group_expires_each_offset_by_its_commit_time() {
        let g = ClassicGroup::new("simple", 0);
        let o = offsets(&[("a", 0, DAY_MS), ("a", 1, 7 * DAY_MS)]);
        assert_eq!(
            expired_offsets(&g, &o, 8 * DAY_MS, 7 * DAY_MS),
            vec![("a".to_string(), 0)]
        );
        assert!(expired_offsets(&g, &o, 7 * DAY_MS, 7 * DAY_MS).is_empty());
    }

    #[test]
    fn an_empty_consumer_group_expires_from_when_it_became_empty() {
        let mut g = ClassicGroup::new("g", 10 * DAY_MS);
        g.set_protocol_type_for_test("consumer");
        // Committed long ago, but the group emptied only on day 10.
        let o = offsets(&[("a", 0, DAY_MS)]);
        assert!(expired_offsets(&g, &o, 16 * DAY_MS, 7 * DAY_MS).is_empty());
        assert_eq!(expired_offsets(&g, &o, 17 * DAY_MS, 7 * DAY_MS).len(), 1);
    }

    #[test]
    fn an_offset_committed_with_its_own_retention_expires_at_its_time() {
        let mut g = ClassicGroup::new("g", DAY_MS);
        g.set_protocol_type_for_test("consumer");
        let mut o = offsets(&[("a", 0, DAY_MS), ("a", 1, DAY_MS)]);
        if let Some(v) = o.get_mut(&("a".to_string(), 0)) {
            v.value.expire_timestamp_ms = Some(DAY_MS + 60_000);
        }
        // A minute after the commit, long before the group's seven days are up.
        assert!(expired_offsets(&g, &o, DAY_MS + 59_999, 7 * DAY_MS).is_empty());
        assert_eq!(
            expired_offsets(&g, &o, DAY_MS + 60_000, 7 * DAY_MS),
            vec![("a".to_string(), 0)]
        );
        // The other offset keeps the group's rule: seven days from when it became Empty.
        assert_eq!(expired_offsets(&g, &o, 8 * DAY_MS - 1, 7 * DAY_MS).len(), 1);
        assert_eq!(expired_offsets(&g, &o, 8 * DAY_MS, 7 * DAY_MS).len(), 2);
    }

    #[test]
    fn a_consumer_groups_offsets_expire_only_for_topics_nobody_subscribes_to() {
        let stored = offsets(&[("sub", 0, 0), ("gone", 0, 0), ("gone", 1, 5 * DAY_MS)]);
        let subscribed: std::collections::BTreeSet<String> = ["sub".to_string()].into();
        // (now, expired, why)
        let cases = [
            (6 * DAY_MS, vec![], "within the retention"),
            (
                7 * DAY_MS,
                vec![("gone".to_string(), 0)],
                "one week after its commit",
            ),
            (
                12 * DAY_MS,
                vec![("gone".to_string(), 0), ("gone".to_string(), 1)],
                "both unsubscribed ones; the subscribed never",
            ),
        ];
        for (now, expect, why) in cases {
            assert_eq!(
                expired_consumer_offsets(&subscribed, &stored, now, 7 * DAY_MS),
                expect,
                "{why}"
            );
        }
    }
}
