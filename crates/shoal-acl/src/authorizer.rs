//! The decision (see the crate docs) and the index that makes it cheap.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::{
    AclBinding, AclEntry, Operation, PatternType, Permission, Principal, ResourceType, WILDCARD,
};

/// The authorizer's settings, by Kafka's names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: allowed everything, whatever the ACLs say.
    pub super_users: HashSet<Principal>,
    /// `allow.everyone.if.no.acl.found` (default false): the answer for a resource no ACL
    /// matches at all.
    pub allow_everyone_if_no_acl_found: bool,
}

/// One request to authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action<'a> {
    pub principal: &'a Principal,
    /// The client's IP address, as text.
    pub host: &'a str,
    pub operation: Operation,
    pub resource_type: ResourceType,
    pub resource_name: &'a str,
}

/// Which rule decided (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    SuperUser,
    /// This ACL matched.
    Acl(AclBinding),
    /// No ACL matches the resource: `allow.everyone.if.no.acl.found`.
    NoAclFound,
    /// ACLs exist for the resource, none allows this.
    NoMatchingAllow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub rule: Rule,
}

/// The ACLs of one resource type, indexed by pattern.
#[derive(Debug, Default, Clone)]
struct TypeIndex {
    literal: HashMap<String, Vec<AclEntry>>,
    prefixed: HashMap<String, Vec<AclEntry>>,
    /// The lengths (bytes) of the PREFIXED names: only these prefixes are looked up.
    prefix_lengths: BTreeSet<usize>,
}

/// A set of ACLs and the settings to decide with.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    config: AuthorizerConfig,
    by_type: HashMap<ResourceType, TypeIndex>,
    count: usize,
}

impl Authorizer {
    pub fn new(config: AuthorizerConfig) -> Authorizer {
        Authorizer {
            config,
            by_type: HashMap::new(),
            count: 0,
        }
    }

    /// Adds an ACL (a duplicate is kept once). Returns whether it was new.
    pub fn add(&mut self, binding: AclBinding) -> bool {
        let index = self
            .by_type
            .entry(binding.pattern.resource_type)
            .or_default();
        let name = binding.pattern.name.clone();
        let list = match binding.pattern.pattern_type {
            PatternType::Literal => index.literal.entry(name).or_default(),
            PatternType::Prefixed => {
                index.prefix_lengths.insert(name.len());
                index.prefixed.entry(name).or_default()
            }
        };
        if list.contains(&binding.entry) {
            return false;
        }
        list.push(binding.entry);
        self.count += 1;
        true
    }

    /// Removes an ACL. Returns whether it was there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        let Some(index) = self.by_type.get_mut(&binding.pattern.resource_type) else {
            return false;
        };
        let name = &binding.pattern.name;
        let map = match binding.pattern.pattern_type {
            PatternType::Literal => &mut index.literal,
            PatternType::Prefixed => &mut index.prefixed,
        };
        let Some(list) = map.get_mut(name) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| e != &binding.entry);
        let removed = list.len() < before;
        if list.is_empty() {
            map.remove(name);
            if binding.pattern.pattern_type == PatternType::Prefixed
                && !index.prefixed.keys().any(|k| k.len() == name.len())
            {
                index.prefix_lengths.remove(&name.len());
            }
        }
        if removed {
            self.count -= 1;
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Decides `action` (see the crate docs for the rules, which are Kafka's).
    pub fn authorize(&self, action: &Action<'_>) -> Decision {
        if self.config.super_users.contains(action.principal) {
            return Decision {
                allowed: true,
                rule: Rule::SuperUser,
            };
        }
        let mut found_resource_acl = false;
        let mut allow: Option<AclBinding> = None;
        if let Some(index) = self.by_type.get(&action.resource_type) {
            for (pattern_type, name, entries) in self.candidates(index, action.resource_name) {
                found_resource_acl = true;
                for entry in entries {
                    match matches(entry, action) {
                        Some(Permission::Deny) => {
                            return Decision {
                                allowed: false,
                                rule: Rule::Acl(binding(action, pattern_type, name, entry)),
                            };
                        }
                        Some(Permission::Allow) if allow.is_none() => {
                            allow = Some(binding(action, pattern_type, name, entry));
                        }
                        _ => {}
                    }
                }
            }
        }
        match allow {
            Some(acl) => Decision {
                allowed: true,
                rule: Rule::Acl(acl),
            },
            None if !found_resource_acl => Decision {
                allowed: self.config.allow_everyone_if_no_acl_found,
                rule: Rule::NoAclFound,
            },
            None => Decision {
                allowed: false,
                rule: Rule::NoMatchingAllow,
            },
        }
    }

    /// Whether `principal` from `host` could be allowed `operation` on *some* resource of
    /// `resource_type` (Kafka's `authorizeByResourceType`, e.g. an idempotent producer needs
    /// WRITE on any topic): a super user can; a DENY on the literal wildcard means none; else
    /// an ALLOW whose pattern no matching DENY covers (a DENY of the same literal name, or of
    /// a prefix of the allowed name); with no ACL of the type at all,
    /// `allow.everyone.if.no.acl.found` decides. Implications do not apply, as in Kafka.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.config.super_users.contains(principal) {
            return true;
        }
        let Some(index) = self.by_type.get(&resource_type) else {
            return self.config.allow_everyone_if_no_acl_found;
        };
        if index.literal.is_empty() && index.prefixed.is_empty() {
            return self.config.allow_everyone_if_no_acl_found;
        }
        let applies = |entry: &AclEntry, permission: Permission| {
            entry.permission == permission
                && (entry.principal == *principal || entry.principal.is_wildcard())
                && (entry.host == WILDCARD || entry.host == host)
                && (entry.operation == operation || entry.operation == Operation::All)
        };
        let denies = |entries: &[AclEntry]| entries.iter().any(|e| applies(e, Permission::Deny));
        let allows = |entries: &[AclEntry]| entries.iter().any(|e| applies(e, Permission::Allow));
        if index.literal.get(WILDCARD).is_some_and(|e| denies(e)) {
            return false;
        }
        let denied_by_prefix = |name: &str| {
            index
                .prefixed
                .iter()
                .any(|(prefix, entries)| name.starts_with(prefix.as_str()) && denies(entries))
        };
        let literal_allowed = index
            .literal
            .iter()
            .any(|(name, entries)| allows(entries) && !denies(entries) && !denied_by_prefix(name));
        literal_allowed
            || index
                .prefixed
                .iter()
                .any(|(name, entries)| allows(entries) && !denied_by_prefix(name))
    }

    /// The ACL lists whose pattern matches `name`: its literal name, the wildcard, and each
    /// PREFIXED name that is a prefix of it.
    fn candidates<'a>(
        &'a self,
        index: &'a TypeIndex,
        name: &'a str,
    ) -> impl Iterator<Item = (PatternType, &'a str, &'a [AclEntry])> + 'a {
        let literal = index
            .literal
            .get_key_value(name)
            .map(|(k, v)| (PatternType::Literal, k.as_str(), v.as_slice()));
        let wildcard = (name != WILDCARD)
            .then(|| index.literal.get_key_value(WILDCARD))
            .flatten()
            .map(|(k, v)| (PatternType::Literal, k.as_str(), v.as_slice()));
        let prefixed = index
            .prefix_lengths
            .iter()
            .take_while(move |len| **len <= name.len())
            .filter_map(move |len| name.get(..*len))
            .filter_map(move |prefix| index.prefixed.get_key_value(prefix))
            .map(|(k, v)| (PatternType::Prefixed, k.as_str(), v.as_slice()));
        literal.into_iter().chain(wildcard).chain(prefixed)
    }
}

fn binding(
    action: &Action<'_>,
    pattern_type: PatternType,
    name: &str,
    entry: &AclEntry,
) -> AclBinding {
    AclBinding {
        pattern: crate::model::ResourcePattern {
            resource_type: action.resource_type,
            name: name.to_owned(),
            pattern_type,
        },
        entry: entry.clone(),
    }
}

/// Whether `entry` applies to `action`, and how (Kafka's `findResult`).
fn matches(entry: &AclEntry, action: &Action<'_>) -> Option<Permission> {
    if entry.principal != *action.principal && !entry.principal.is_wildcard() {
        return None;
    }
    if entry.host != WILDCARD && entry.host != action.host {
        return None;
    }
    let operation_matches = entry.operation == Operation::All
        || entry.operation == action.operation
        || (entry.permission == Permission::Allow && implies(entry.operation, action.operation));
    operation_matches.then_some(entry.permission)
}

/// ALLOW implications: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
/// DESCRIBE_CONFIGS.
fn implies(granted: Operation, wanted: Operation) -> bool {
    match wanted {
        Operation::Describe => matches!(
            granted,
            Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
        ),
        Operation::DescribeConfigs => granted == Operation::AlterConfigs,
        _ => false,
    }
}

#[cfg(test)]
#[path = "authorizer_tests.rs"]
mod tests;
