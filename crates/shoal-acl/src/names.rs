//! Kafka's names of the ACL vocabulary (`TOPIC`, `DESCRIBE_CONFIGS`, `PREFIXED`, `ALLOW`), as
//! kafka-acls prints them and as it accepts them on its command line (case and underscores
//! ignored: `DescribeConfigs`, `describe-configs` and `DESCRIBE_CONFIGS` are one operation).

use std::fmt;

use crate::model::{AclError, Operation, PatternType, Permission, ResourceType};

/// `DescribeConfigs`, `describe_configs` and `DESCRIBE-CONFIGS` all become `describeconfigs`.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

macro_rules! kafka_names {
    ($type:ty, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $type {
            /// Every value, in code order.
            pub const ALL_VALUES: &'static [$type] = &[$(<$type>::$variant),+];

            /// Kafka's name (`UPPER_SNAKE`).
            pub fn name(self) -> &'static str {
                match self {
                    $(<$type>::$variant => $name),+
                }
            }

            /// Kafka's name in any case, with or without `_` or `-`.
            pub fn parse(text: &str) -> Result<$type, AclError> {
                let folded = fold(text);
                Self::ALL_VALUES
                    .iter()
                    .copied()
                    .find(|v| fold(v.name()) == folded)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL_VALUES.iter().map(|v| v.name()).collect();
                        AclError::Invalid(format!(
                            concat!("unknown ", $what, " {:?} (one of {})"),
                            text,
                            known.join(", ")
                        ))
                    })
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_names!(ResourceType, "resource type", [
    Topic => "TOPIC",
    Group => "GROUP",
    Cluster => "CLUSTER",
    TransactionalId => "TRANSACTIONAL_ID",
    DelegationToken => "DELEGATION_TOKEN",
    User => "USER",
]);

kafka_names!(Operation, "operation", [
    All => "ALL",
    Read => "READ",
    Write => "WRITE",
    Create => "CREATE",
    Delete => "DELETE",
    Alter => "ALTER",
    Describe => "DESCRIBE",
    ClusterAction => "CLUSTER_ACTION",
    DescribeConfigs => "DESCRIBE_CONFIGS",
    AlterConfigs => "ALTER_CONFIGS",
    IdempotentWrite => "IDEMPOTENT_WRITE",
    CreateTokens => "CREATE_TOKENS",
    DescribeTokens => "DESCRIBE_TOKENS",
]);

kafka_names!(PatternType, "pattern type", [
    Literal => "LITERAL",
    Prefixed => "PREFIXED",
]);

kafka_names!(Permission, "permission type", [
    Deny => "DENY",
    Allow => "ALLOW",
]);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_and_parse_in_kafka_acls_spellings() {
        for op in Operation::ALL_VALUES {
            assert_eq!(Operation::parse(op.name()).unwrap(), *op);
            assert_eq!(Operation::from_code(op.code()).unwrap(), *op);
        }
        assert_eq!(
            Operation::parse("DescribeConfigs").unwrap(),
            Operation::DescribeConfigs
        );
        assert_eq!(
            Operation::parse("idempotent-write").unwrap(),
            Operation::IdempotentWrite
        );
        assert_eq!(
            ResourceType::parse("TransactionalId").unwrap(),
            ResourceType::TransactionalId
        );
        assert_eq!(
            PatternType::parse("prefixed").unwrap(),
            PatternType::Prefixed
        );
        assert_eq!(Permission::parse("Allow").unwrap(), Permission::Allow);
        let err = Operation::parse("Fly").unwrap_err().to_string();
        assert!(
            err.contains("\"Fly\"") && err.contains("DESCRIBE_CONFIGS"),
            "{err}"
        );
        assert!(ResourceType::parse("").is_err());
    }
}
