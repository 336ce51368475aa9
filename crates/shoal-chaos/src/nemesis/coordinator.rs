//! Which node coordinates a transactional id or a consumer group, so the nemesis can aim at it.
//!
//! The coordinator is the leader of one partition of an internal topic, chosen by Kafka's rule
//! `Utils.abs(key.hashCode()) % partitions` (Java's `String.hashCode`: 31·h + c over UTF-16
//! code units, wrapping at 32 bits; `Utils.abs` maps `i32::MIN` to 0), over
//! `__transaction_state` for a transactional id and `__consumer_offsets` for a group. The
//! partition count is read from the topic's metadata, not assumed (50 is only the default of
//! `transaction.state.log.num.partitions` and `offsets.topic.num.partitions`).

use crate::history::VictimChoice;

use super::probe::Probe;

/// Java's `String.hashCode`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of `key` among `partitions` (a count below 1 counts as 1).
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// The internal topic whose partition leaders coordinate `choice`'s keys.
pub fn topic_of(choice: VictimChoice) -> Option<&'static str> {
    match choice {
        VictimChoice::TxnCoordinator => Some("__transaction_state"),
        VictimChoice::GroupCoordinator => Some("__consumer_offsets"),
        VictimChoice::Random | VictimChoice::Each => None,
    }
}

/// The coordinator of `key`: (partition, leader's node id), or `None` while the topic does not
/// exist yet or the partition has no leader.
pub fn find(probe: &Probe, choice: VictimChoice, key: &str) -> Option<(i32, i32)> {
    let topic = topic_of(choice)?;
    let leaders = probe.leaders(topic)?;
    let partition = partition_for(key, leaders.len() as i32);
    leaders
        .iter()
        .find(|(p, _)| *p == partition)
        .map(|(_, leader)| (partition, *leader))
        .filter(|(_, leader)| *leader >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_javas_string_hash_code() {
        // Values from Java: "".hashCode() == 0, "a" == 97, "hello" == 99162322; "Aa" and "BB"
        // collide at 2112.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("Aa"), 2112);
        assert_eq!(java_string_hash("BB"), 2112);
        // Non-BMP characters hash as their two UTF-16 surrogates.
        assert_eq!(java_string_hash("😀"), 0xd83d * 31 + 0xde00);
    }

    #[test]
    fn partitions_follow_kafkas_abs_and_modulo() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // A negative hash: Kafka takes its absolute value (not the sign bit off).
        let key = "shoal-chaos-1700000000-src-1";
        let hash = java_string_hash(key);
        let expected = if hash == i32::MIN { 0 } else { hash.abs() } % 50;
        assert_eq!(partition_for(key, 50), expected);
        let negative = (0..1000)
            .map(|i| format!("txn-{i}"))
            .find(|k| java_string_hash(k) < 0)
            .expect("some key hashes below zero");
        assert_eq!(
            partition_for(&negative, 50),
            java_string_hash(&negative).abs() % 50
        );
        assert_eq!(partition_for("x", 0), 0, "a zero count is treated as one");
        for k in ["a", "group-1", "😀", key] {
            assert!((0..7).contains(&partition_for(k, 7)));
        }
    }

    #[test]
    fn only_coordinator_choices_have_a_topic() {
        assert_eq!(
            topic_of(VictimChoice::TxnCoordinator),
            Some("__transaction_state")
        );
        assert_eq!(
            topic_of(VictimChoice::GroupCoordinator),
            Some("__consumer_offsets")
        );
        assert_eq!(topic_of(VictimChoice::Random), None);
        assert_eq!(topic_of(VictimChoice::Each), None);
    }
}
