//! Kafka's ACLs, decided as Kafka's `StandardAuthorizer` decides them (issue #16).
//!
//! An ACL binds a resource pattern (type, name, LITERAL or PREFIXED; the LITERAL name `*`
//! matches every name) to an entry (principal or `User:*`, host or `*`, operation or ALL,
//! ALLOW or DENY). A request is an [`Action`]: who (principal, host), what operation, on which
//! resource. [`Authorizer::authorize`] is a pure function of the ACL set and the action:
//!
//! 1. a super user is allowed everything;
//! 2. of the ACLs whose pattern matches the resource, one that matches the principal, host and
//!    operation with DENY denies (deny wins);
//! 3. else one with ALLOW allows; an ALLOW of READ, WRITE, DELETE or ALTER also allows
//!    DESCRIBE, and one of ALTER_CONFIGS allows DESCRIBE_CONFIGS (only ALLOW implies: a DENY
//!    of READ does not deny DESCRIBE);
//! 4. else, if no ACL at all matches the resource, `allow.everyone.if.no.acl.found` decides;
//!    otherwise the action is denied.
//!
//! The ACLs are indexed by resource type and name, so a decision costs a few hash lookups,
//! not a scan: literal names and the wildcard directly, prefixes only at the lengths some
//! PREFIXED ACL of that type has. [`AclFilter`] is Kafka's binding filter (DescribeAcls,
//! DeleteAcls); `names` has Kafka's spellings for tables and command lines. Storage (metadata records), the wire APIs and the audit log
//! are the callers' business.

mod authorizer;
mod filter;
mod model;
mod names;

pub use authorizer::{Action, Authorizer, AuthorizerConfig, Decision, Rule};
pub use filter::{ANY_CODE, AclFilter, MATCH_CODE, PatternFilter};
pub use model::{
    AclBinding, AclEntry, AclError, Operation, PatternType, Permission, Principal, ResourcePattern,
    ResourceType, WILDCARD,
};
