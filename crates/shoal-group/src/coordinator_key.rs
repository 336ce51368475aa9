//! Which `__consumer_offsets` partition coordinates a group.
//!
//! Kafka's rule, kept exactly so every broker — and every Kafka tool — agrees:
//! `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` (31·h + c over
//! UTF-16 code units, wrapping at 32 bits) and `Utils.abs` mapping `i32::MIN` to 0.

/// Java's `String.hashCode`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The offsets partition of `group_id` among `partitions` (≥ 1).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_javas_string_hash_code() {
        // Values from Java: "".hashCode() == 0, "a" == 97, "hello" == 99162322,
        // "console-consumer-1" == 1309744390, "Aa" and "BB" collide at 2112.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        assert_eq!(java_string_hash("Aa"), 2112);
        // Non-BMP characters hash as their two UTF-16 surrogates.
        assert_eq!(java_string_hash("😀"), 0xd83d * 31 + 0xde00);
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        for g in [
            "a",
            "group-1",
            "my-consumers",
            "😀",
            "negative-hash-zzzzzzzzzz",
        ] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p), "{g} -> {p}");
            assert_eq!(partition_for(g, 50), p);
        }
        assert_eq!(partition_for("x", 0), 0, "a zero count is treated as one");
    }
}
