//! The ACL vocabulary, with Kafka's names and wire codes (`AclOperation`, `ResourceType`,
//! `PatternType`, `AclPermissionType`).

use std::fmt;

/// The resource name or host that matches any (in a LITERAL pattern, or an entry's host).
pub const WILDCARD: &str = "*";

/// Why a binding is not a valid ACL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("unknown resource type code {0}")]
    UnknownResourceType(i8),
    #[error("unknown pattern type code {0}")]
    UnknownPatternType(i8),
    #[error("unknown operation code {0}")]
    UnknownOperation(i8),
    #[error("unknown permission type code {0}")]
    UnknownPermission(i8),
    #[error("{0}")]
    Invalid(String),
}

/// Kafka's `ResourceType` (codes as on the wire).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    pub fn from_code(code: i8) -> Result<Self, AclError> {
        Ok(match code {
            2 => Self::Topic,
            3 => Self::Group,
            4 => Self::Cluster,
            5 => Self::TransactionalId,
            6 => Self::DelegationToken,
            7 => Self::User,
            other => return Err(AclError::UnknownResourceType(other)),
        })
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Kafka's `PatternType` for stored ACLs (codes as on the wire).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

impl PatternType {
    pub fn from_code(code: i8) -> Result<Self, AclError> {
        match code {
            3 => Ok(Self::Literal),
            4 => Ok(Self::Prefixed),
            other => Err(AclError::UnknownPatternType(other)),
        }
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Kafka's `AclOperation` (codes as on the wire).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl Operation {
    pub fn from_code(code: i8) -> Result<Self, AclError> {
        Ok(match code {
            2 => Self::All,
            3 => Self::Read,
            4 => Self::Write,
            5 => Self::Create,
            6 => Self::Delete,
            7 => Self::Alter,
            8 => Self::Describe,
            9 => Self::ClusterAction,
            10 => Self::DescribeConfigs,
            11 => Self::AlterConfigs,
            12 => Self::IdempotentWrite,
            13 => Self::CreateTokens,
            14 => Self::DescribeTokens,
            other => return Err(AclError::UnknownOperation(other)),
        })
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// Kafka's `AclPermissionType`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

impl Permission {
    pub fn from_code(code: i8) -> Result<Self, AclError> {
        match code {
            2 => Ok(Self::Deny),
            3 => Ok(Self::Allow),
            other => Err(AclError::UnknownPermission(other)),
        }
    }

    pub fn code(self) -> i8 {
        self as i8
    }
}

/// A principal, `Type:name` (`User:alice`); `User:*` matches every user.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: &str) -> Principal {
        Principal {
            kind: "User".to_owned(),
            name: name.to_owned(),
        }
    }

    /// Parses `Type:name`; both parts must be non-empty.
    pub fn parse(text: &str) -> Result<Principal, AclError> {
        match text.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(Principal {
                kind: kind.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(AclError::Invalid(format!(
                "principal {text:?} is not Type:name (e.g. User:alice)"
            ))),
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.kind == "User" && self.name == WILDCARD
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// What an ACL applies to.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

/// Who may or may not do what.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AclEntry {
    pub principal: Principal,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// One ACL.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AclEntry,
}

impl AclBinding {
    /// From a CreateAcls creation's fields: every code must name one value (not UNKNOWN, ANY
    /// or MATCH), and the result must pass [`Self::validate`].
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, AclError> {
        let binding = AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::from_code(resource_type)?,
                name: name.to_owned(),
                pattern_type: PatternType::from_code(pattern_type)?,
            },
            entry: AclEntry {
                principal: Principal::parse(principal)?,
                host: host.to_owned(),
                operation: Operation::from_code(operation)?,
                permission: Permission::from_code(permission)?,
            },
        };
        binding.validate()?;
        Ok(binding)
    }

    /// Kafka's CreateAcls checks: a name, a principal and a host; the cluster resource is named
    /// `kafka-cluster`; a PREFIXED pattern is not the wildcard.
    pub fn validate(&self) -> Result<(), AclError> {
        let invalid = |why: String| Err(AclError::Invalid(why));
        if self.pattern.name.is_empty() {
            return invalid("the resource name is empty".to_owned());
        }
        if self.pattern.resource_type == ResourceType::Cluster
            && self.pattern.name != "kafka-cluster"
        {
            return invalid(format!(
                "the cluster resource is named kafka-cluster, not {:?}",
                self.pattern.name
            ));
        }
        if self.pattern.pattern_type == PatternType::Prefixed && self.pattern.name == WILDCARD {
            return invalid("a PREFIXED pattern cannot be the wildcard *".to_owned());
        }
        if self.entry.host.is_empty() {
            return invalid("the host is empty (use * for any)".to_owned());
        }
        if self.entry.principal.kind.is_empty() || self.entry.principal.name.is_empty() {
            return invalid("the principal is not Type:name".to_owned());
        }
        Ok(())
    }
}
