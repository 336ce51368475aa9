//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`).
//!
//! A topic name becomes a directory name (`<topic>-<partition>`) and a metric tag, so the rules
//! are strict: 1..=249 ASCII characters from `[a-zA-Z0-9._-]`, and not `.` or `..`. Because
//! metric names replace `.` with `_`, two names that differ only there would collide; Kafka
//! refuses to create the second one and so do we ([`collision_key`]).

use crate::error::ControllerError;

/// Kafka's internal topics (`Topic.isInternal`): written only by the brokers' own coordinators.
/// Clients may read them, never produce to, create, delete or grow them.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Whether `name` is one of Kafka's internal topics (a user topic may still start with `__`).
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Longest legal topic name (Kafka: 255 minus room for the `-<partition>` directory suffix).
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks a topic name against Kafka's rules. The error message is Kafka's wording.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".to_string(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".to_string(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        // Only show a prefix: the name goes back to the client and into logs.
        let prefix: String = name.chars().take(64).collect();
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, \
             topic name: {prefix}..."
        )));
    }
    if !name.bytes().all(is_legal_byte) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name \"{}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'",
            name.escape_debug()
        )));
    }
    Ok(())
}

fn is_legal_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// Two topics collide when their names are equal after mapping `.` to `_`.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kafkas_internal_topics_are_internal() {
        for name in [
            "__consumer_offsets",
            "__transaction_state",
            "__share_group_state",
        ] {
            assert!(is_internal(name), "{name}");
        }
        for name in [
            "__cluster_metadata",
            "__my_topic",
            "consumer_offsets",
            "__consumer_offsets2",
        ] {
            assert!(!is_internal(name), "{name}");
        }
    }

    #[test]
    fn accepts_legal_names() {
        for name in [
            "a",
            "orders",
            "orders.v2",
            "my_topic-1",
            "A.b_C-9",
            "..a",
            "...",
            "_",
        ] {
            assert!(validate_topic_name(name).is_ok(), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn rejects_illegal_names() {
        for name in ["", ".", "..", "a b", "a/b", "tópico", "a\n", "a:b", "a*"] {
            let err = validate_topic_name(name).unwrap_err();
            assert!(matches!(err, ControllerError::InvalidTopic(_)), "{name}");
        }
        let err = validate_topic_name(&"x".repeat(250)).unwrap_err();
        assert!(err.to_string().contains("249"), "{err}");
    }

    #[test]
    fn collision_key_maps_dots_to_underscores() {
        assert_eq!(collision_key("a.b_c"), collision_key("a_b.c"));
        assert_ne!(collision_key("a.b"), collision_key("a-b"));
    }
}
