//! Kafka's `AclBindingFilter`: which ACLs a DescribeAcls or DeleteAcls request means.
//!
//! Every part is optional (ANY). The pattern part is subtle and Kafka's: with a specific
//! pattern type (or ANY) and a name, the ACL's name must be that name exactly; with MATCH, an
//! ACL matches when it *would apply* to a resource of that name (the literal name, the literal
//! wildcard `*`, or a PREFIXED name that starts it).

use crate::model::{
    AclBinding, AclError, Operation, PatternType, Permission, Principal, ResourceType, WILDCARD,
};

/// Wire code of ANY in every filter enum.
pub const ANY_CODE: i8 = 1;
/// Wire code of MATCH in a pattern type filter.
pub const MATCH_CODE: i8 = 2;

/// The pattern-type part of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum PatternFilter {
    #[default]
    Any,
    /// ACLs that would apply to the named resource.
    Match,
    Exactly(PatternType),
}

impl PatternFilter {
    pub fn from_code(code: i8) -> Result<PatternFilter, AclError> {
        match code {
            ANY_CODE => Ok(PatternFilter::Any),
            MATCH_CODE => Ok(PatternFilter::Match),
            other => PatternType::from_code(other).map(PatternFilter::Exactly),
        }
    }

    pub fn code(self) -> i8 {
        match self {
            PatternFilter::Any => ANY_CODE,
            PatternFilter::Match => MATCH_CODE,
            PatternFilter::Exactly(p) => p.code(),
        }
    }
}

/// A filter over ACL bindings; `None` parts match anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<Principal>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

/// `None` for ANY, else the value the code names (UNKNOWN, 0, and unassigned codes refused).
fn optional<T>(
    code: i8,
    parse: impl FnOnce(i8) -> Result<T, AclError>,
) -> Result<Option<T>, AclError> {
    if code == ANY_CODE {
        Ok(None)
    } else {
        parse(code).map(Some)
    }
}

impl AclFilter {
    /// From a request's fields (DescribeAcls, a DeleteAcls filter). An UNKNOWN or unassigned
    /// code, or a principal that is not `Type:name`, is an error (Kafka: INVALID_REQUEST).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, AclError> {
        Ok(AclFilter {
            resource_type: optional(resource_type, ResourceType::from_code)?,
            name: name.map(str::to_owned),
            pattern: PatternFilter::from_code(pattern_type)?,
            principal: principal.map(Principal::parse).transpose()?,
            host: host.map(str::to_owned),
            operation: optional(operation, Operation::from_code)?,
            permission: optional(permission, Permission::from_code)?,
        })
    }

    /// Whether `binding` is one of the ACLs this filter means (see the module docs).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let pattern = &binding.pattern;
        let entry = &binding.entry;
        self.resource_type
            .is_none_or(|t| t == pattern.resource_type)
            && self.pattern_matches(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == entry.principal)
            && self.host.as_deref().is_none_or(|h| h == entry.host)
            && self.operation.is_none_or(|o| o == entry.operation)
            && self.permission.is_none_or(|p| p == entry.permission)
    }

    fn pattern_matches(&self, binding: &AclBinding) -> bool {
        let pattern = &binding.pattern;
        if let PatternFilter::Exactly(wanted) = self.pattern
            && wanted != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = self.name.as_deref() else {
            return true;
        };
        match self.pattern {
            PatternFilter::Any | PatternFilter::Exactly(_) => name == pattern.name,
            PatternFilter::Match => match pattern.pattern_type {
                PatternType::Literal => name == pattern.name || pattern.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(pattern.name.as_str()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AclEntry, ResourcePattern};

    fn binding(name: &str, pattern_type: PatternType, principal: &str) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: name.to_owned(),
                pattern_type,
            },
            entry: AclEntry {
                principal: Principal::parse(principal).unwrap(),
                host: "*".to_owned(),
                operation: Operation::Read,
                permission: Permission::Allow,
            },
        }
    }

    fn filter(name: Option<&str>, pattern: PatternFilter) -> AclFilter {
        AclFilter {
            name: name.map(str::to_owned),
            pattern,
            ..AclFilter::default()
        }
    }

    #[test]
    fn pattern_filters_follow_kafkas_semantics() {
        use PatternFilter::*;
        use PatternType::{Literal, Prefixed};
        let literal = binding("orders-eu", Literal, "User:a");
        let wildcard = binding("*", Literal, "User:a");
        let prefix = binding("orders-", Prefixed, "User:a");
        let other = binding("payments", Literal, "User:a");
        // (filter, [literal, wildcard, prefix, other])
        let table = [
            (filter(None, Any), [true, true, true, true]),
            (filter(None, Match), [true, true, true, true]),
            (filter(None, Exactly(Prefixed)), [false, false, true, false]),
            (filter(Some("orders-eu"), Any), [true, false, false, false]),
            (
                filter(Some("orders-eu"), Exactly(Literal)),
                [true, false, false, false],
            ),
            (filter(Some("orders-eu"), Match), [true, true, true, false]),
            (
                filter(Some("orders-"), Exactly(Prefixed)),
                [false, false, true, false],
            ),
            (
                filter(Some("orders-"), Exactly(Literal)),
                [false, false, false, false],
            ),
            (filter(Some("*"), Any), [false, true, false, false]),
            (filter(Some("payments"), Match), [false, true, false, true]),
        ];
        for (f, expected) in table {
            let got = [&literal, &wildcard, &prefix, &other].map(|b| f.matches(b));
            assert_eq!(got, expected, "{f:?}");
        }
    }

    #[test]
    fn entry_parts_filter_exactly_and_wire_codes_are_checked() {
        let acl = binding("t", PatternType::Literal, "User:alice");
        let f = AclFilter::from_wire(1, None, 1, Some("User:alice"), None, 1, 1).unwrap();
        assert!(f.matches(&acl));
        let f = AclFilter::from_wire(1, None, 1, Some("User:bob"), None, 1, 1).unwrap();
        assert!(!f.matches(&acl));
        // ALL in a filter means ACLs of operation ALL, not any operation.
        let f = AclFilter::from_wire(1, None, 1, None, None, Operation::All.code(), 1).unwrap();
        assert!(!f.matches(&acl));
        let f = AclFilter::from_wire(2, None, 1, None, Some("*"), 3, 3).unwrap();
        assert!(f.matches(&acl));
        let f = AclFilter::from_wire(3, None, 1, None, None, 1, 1).unwrap();
        assert!(!f.matches(&acl), "a GROUP filter");
        // UNKNOWN (0) and unassigned codes are errors, as is a principal without a type.
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 0, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 1, 9).is_err());
        assert!(AclFilter::from_wire(1, None, 1, Some("alice"), None, 1, 1).is_err());
    }
}
