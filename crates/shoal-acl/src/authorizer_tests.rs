//! Table tests of Kafka's documented ACL semantics (the StandardAuthorizer's): deny wins,
//! LITERAL vs PREFIXED vs the `*` wildcard, ALLOW implications, `User:*`, host filters,
//! super users and `allow.everyone.if.no.acl.found`.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::ResourcePattern;

use Operation::*;
use PatternType::{Literal, Prefixed};
use Permission::{Allow, Deny};
use ResourceType::{Cluster, Group, Topic};

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type,
            name: name.to_owned(),
            pattern_type,
        },
        entry: AclEntry {
            principal: Principal::parse(principal).unwrap(),
            host: host.to_owned(),
            operation,
            permission,
        },
    }
}

fn authorizer(acls: &[AclBinding], supers: &[&str], allow_if_none: bool) -> Authorizer {
    let mut a = Authorizer::new(AuthorizerConfig {
        super_users: supers
            .iter()
            .map(|p| Principal::parse(p).unwrap())
            .collect(),
        allow_everyone_if_no_acl_found: allow_if_none,
    });
    for binding in acls {
        binding.validate().unwrap();
        a.add(binding.clone());
    }
    a
}

fn allowed(
    a: &Authorizer,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    let principal = Principal::parse(principal).unwrap();
    a.authorize(&Action {
        principal: &principal,
        host,
        operation,
        resource_type,
        resource_name: name,
    })
    .allowed
}

const H: &str = "10.0.0.1";

#[test]
fn the_documented_semantics() {
    // (ACLs, super users, allow.everyone.if.no.acl.found, principal, host, op, type, name, allowed)
    type Case<'a> = (
        Vec<AclBinding>,
        &'a [&'a str],
        bool,
        &'a str,
        &'a str,
        Operation,
        ResourceType,
        &'a str,
        bool,
    );
    let alice_read_orders = || acl(Topic, "orders", Literal, "User:alice", "*", Read, Allow);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // No ACL at all: the default decides.
        (vec![], &[], false, "User:alice", H, Read, Topic, "orders", false),
        (vec![], &[], true, "User:alice", H, Read, Topic, "orders", true),
        // A literal ALLOW.
        (vec![alice_read_orders()], &[], false, "User:alice", H, Read, Topic, "orders", true),
        (vec![alice_read_orders()], &[], false, "User:bob", H, Read, Topic, "orders", false),
        (vec![alice_read_orders()], &[], false, "User:alice", H, Write, Topic, "orders", false),
        // Literal is exact: not a prefix, not another name.
        (vec![alice_read_orders()], &[], false, "User:alice", H, Read, Topic, "orders-eu", false),
        // ACLs on the resource exist: the default no longer applies (bob is denied even with
        // allow.everyone.if.no.acl.found) ...
        (vec![alice_read_orders()], &[], true, "User:bob", H, Read, Topic, "orders", false),
        // ... but another resource without ACLs still gets the default.
        (vec![alice_read_orders()], &[], true, "User:bob", H, Read, Topic, "payments", true),
        // PREFIXED matches names starting with it, including the prefix itself.
        (vec![acl(Topic, "orders-", Prefixed, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "orders-eu", true),
        (vec![acl(Topic, "orders-", Prefixed, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "orders-", true),
        (vec![acl(Topic, "orders-", Prefixed, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "orders", false),
        (vec![acl(Topic, "orders-", Prefixed, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "payments", false),
        // The literal wildcard matches every name of its type, not other types.
        (vec![acl(Topic, "*", Literal, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "anything", true),
        (vec![acl(Topic, "*", Literal, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Group, "anything", false),
        // User:* matches every principal.
        (vec![acl(Topic, "orders", Literal, "User:*", "*", Read, Allow)], &[], false, "User:bob", H, Read, Topic, "orders", true),
        // Deny wins over allow, whatever the patterns.
        (vec![alice_read_orders(), acl(Topic, "ord", Prefixed, "User:alice", "*", Read, Deny)], &[], false, "User:alice", H, Read, Topic, "orders", false),
        (vec![acl(Topic, "*", Literal, "User:*", "*", All, Allow), acl(Topic, "orders", Literal, "User:alice", "*", Write, Deny)], &[], false, "User:alice", H, Write, Topic, "orders", false),
        (vec![acl(Topic, "*", Literal, "User:*", "*", All, Allow), acl(Topic, "orders", Literal, "User:alice", "*", Write, Deny)], &[], false, "User:alice", H, Read, Topic, "orders", true),
        // A DENY for User:* denies everyone but super users.
        (vec![alice_read_orders(), acl(Topic, "orders", Literal, "User:*", "*", Read, Deny)], &["User:admin"], false, "User:alice", H, Read, Topic, "orders", false),
        (vec![acl(Topic, "orders", Literal, "User:*", "*", All, Deny)], &["User:admin"], false, "User:admin", H, Write, Topic, "orders", true),
        // ALL covers every operation, in ALLOW and in DENY.
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", All, Allow)], &[], false, "User:alice", H, Delete, Topic, "orders", true),
        (vec![alice_read_orders(), acl(Topic, "orders", Literal, "User:alice", "*", All, Deny)], &[], false, "User:alice", H, Read, Topic, "orders", false),
        // ALLOW implications: READ/WRITE/DELETE/ALTER imply DESCRIBE, CREATE does not ...
        (vec![alice_read_orders()], &[], false, "User:alice", H, Describe, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", Write, Allow)], &[], false, "User:alice", H, Describe, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", Delete, Allow)], &[], false, "User:alice", H, Describe, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", Alter, Allow)], &[], false, "User:alice", H, Describe, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", Create, Allow)], &[], false, "User:alice", H, Describe, Topic, "orders", false),
        // ... ALTER_CONFIGS implies DESCRIBE_CONFIGS, not the reverse ...
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", AlterConfigs, Allow)], &[], false, "User:alice", H, DescribeConfigs, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", DescribeConfigs, Allow)], &[], false, "User:alice", H, AlterConfigs, Topic, "orders", false),
        // ... and READ does not imply WRITE.
        (vec![alice_read_orders()], &[], false, "User:alice", H, Write, Topic, "orders", false),
        // Only ALLOW implies: a DENY of READ does not deny DESCRIBE.
        (vec![acl(Topic, "orders", Literal, "User:alice", "*", Describe, Allow), acl(Topic, "orders", Literal, "User:alice", "*", Read, Deny)], &[], false, "User:alice", H, Describe, Topic, "orders", true),
        // Host filters.
        (vec![acl(Topic, "orders", Literal, "User:alice", "10.0.0.1", Read, Allow)], &[], false, "User:alice", "10.0.0.1", Read, Topic, "orders", true),
        (vec![acl(Topic, "orders", Literal, "User:alice", "10.0.0.1", Read, Allow)], &[], false, "User:alice", "10.0.0.2", Read, Topic, "orders", false),
        (vec![alice_read_orders(), acl(Topic, "orders", Literal, "User:alice", "10.0.0.9", Read, Deny)], &[], false, "User:alice", "10.0.0.9", Read, Topic, "orders", false),
        (vec![alice_read_orders(), acl(Topic, "orders", Literal, "User:alice", "10.0.0.9", Read, Deny)], &[], false, "User:alice", "10.0.0.1", Read, Topic, "orders", true),
        // Super users are allowed everything, with or without ACLs.
        (vec![], &["User:admin"], false, "User:admin", H, Alter, Cluster, "kafka-cluster", true),
        (vec![alice_read_orders()], &["User:admin"], false, "User:admin", H, Write, Topic, "orders", true),
        // Resource types are separate: a group ACL says nothing about a topic of that name.
        (vec![acl(Group, "billing", Literal, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Group, "billing", true),
        (vec![acl(Group, "billing", Literal, "User:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "billing", false),
        // Principal types are compared too.
        (vec![acl(Topic, "orders", Literal, "Group:alice", "*", Read, Allow)], &[], false, "User:alice", H, Read, Topic, "orders", false),
    ];
    for (i, (acls, supers, allow_if_none, principal, host, op, rtype, name, want)) in
        cases.into_iter().enumerate()
    {
        let a = authorizer(&acls, supers, allow_if_none);
        assert_eq!(
            allowed(&a, principal, host, op, rtype, name),
            want,
            "case {i}: {principal}@{host} {op:?} {rtype:?}:{name} with {acls:?}"
        );
    }
}

#[test]
fn the_issue_scenario_read_on_a_prefix_and_a_group() {
    // A user with only Read on orders-* and the group billing can consume orders-eu, not
    // payments; cannot produce; cannot create topics.
    let a = authorizer(
        &[
            acl(Topic, "orders-", Prefixed, "User:carol", "*", Read, Allow),
            acl(Group, "billing", Literal, "User:carol", "*", Read, Allow),
        ],
        &[],
        false,
    );
    assert!(allowed(&a, "User:carol", H, Read, Topic, "orders-eu"));
    assert!(allowed(&a, "User:carol", H, Describe, Topic, "orders-eu"));
    assert!(allowed(&a, "User:carol", H, Read, Group, "billing"));
    assert!(!allowed(&a, "User:carol", H, Read, Topic, "payments"));
    assert!(!allowed(&a, "User:carol", H, Describe, Topic, "payments"));
    assert!(!allowed(&a, "User:carol", H, Write, Topic, "orders-eu"));
    assert!(!allowed(&a, "User:carol", H, Read, Group, "other"));
    assert!(!allowed(
        &a,
        "User:carol",
        H,
        Create,
        Cluster,
        "kafka-cluster"
    ));
}

#[test]
fn the_deciding_rule_is_reported() {
    let deny = acl(Topic, "or", Prefixed, "User:alice", "*", Write, Deny);
    let a = authorizer(
        &[
            deny.clone(),
            acl(Topic, "*", Literal, "User:*", "*", Read, Allow),
        ],
        &["User:root"],
        false,
    );
    let alice = Principal::user("alice");
    let action = |operation, name| Action {
        principal: &alice,
        host: H,
        operation,
        resource_type: Topic,
        resource_name: name,
    };
    assert_eq!(a.authorize(&action(Write, "orders")).rule, Rule::Acl(deny));
    assert!(
        matches!(a.authorize(&action(Read, "orders")).rule, Rule::Acl(b) if b.entry.permission == Allow)
    );
    assert_eq!(
        a.authorize(&action(Delete, "x")).rule,
        Rule::NoMatchingAllow
    );
    let root = Principal::user("root");
    assert_eq!(
        a.authorize(&Action {
            principal: &root,
            ..action(Delete, "x")
        })
        .rule,
        Rule::SuperUser
    );
    let group = a.authorize(&Action {
        resource_type: Group,
        ..action(Read, "g")
    });
    assert_eq!((group.allowed, group.rule), (false, Rule::NoAclFound));
}

#[test]
fn add_and_remove_keep_the_index_exact() {
    let p = acl(Topic, "orders-", Prefixed, "User:alice", "*", Read, Allow);
    let l = acl(Topic, "orders-eu", Literal, "User:bob", "*", Read, Allow);
    let mut a = authorizer(&[], &[], false);
    assert!(a.add(p.clone()));
    assert!(!a.add(p.clone()), "a duplicate is kept once");
    assert!(a.add(l.clone()));
    assert_eq!(a.len(), 2);
    assert!(allowed(&a, "User:alice", H, Read, Topic, "orders-eu"));
    assert!(a.remove(&p));
    assert!(!a.remove(&p));
    assert_eq!(a.len(), 1);
    assert!(!allowed(&a, "User:alice", H, Read, Topic, "orders-eu"));
    assert!(allowed(&a, "User:bob", H, Read, Topic, "orders-eu"));
    assert!(a.remove(&l));
    assert!(a.is_empty());
    // Nothing left for the resource: the default applies again.
    let open = {
        let mut b = authorizer(&[], &[], true);
        b.add(l.clone());
        b.remove(&l);
        b
    };
    assert!(allowed(&open, "User:anyone", H, Read, Topic, "orders-eu"));
}

#[test]
fn bindings_kafka_refuses_are_invalid() {
    for bad in [
        acl(Topic, "", Literal, "User:a", "*", Read, Allow),
        acl(Cluster, "my-cluster", Literal, "User:a", "*", Alter, Allow),
        acl(Topic, "*", Prefixed, "User:a", "*", Read, Allow),
        acl(Topic, "t", Literal, "User:a", "", Read, Allow),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    assert!(Principal::parse("alice").is_err());
    assert!(Principal::parse("User:").is_err());
    assert!(ResourceType::from_code(1).is_err() && ResourceType::from_code(99).is_err());
    assert!(PatternType::from_code(1).is_err());
    assert!(Operation::from_code(0).is_err() && Operation::from_code(15).is_err());
    assert_eq!(Operation::from_code(3).unwrap(), Read);
    assert_eq!(Permission::from_code(2).unwrap(), Deny);
}

#[test]
fn authorize_any_is_kafkas_authorize_by_resource_type() {
    let ann = Principal::user("ann");
    let any = |acls: &[AclBinding], allow_if_none: bool| {
        authorizer(acls, &["User:root"], allow_if_none)
            .authorize_any(&ann, "10.0.0.1", Write, Topic)
    };
    let allow = |name: &str, pt| acl(Topic, name, pt, "User:ann", "*", Write, Allow);
    let deny = |name: &str, pt| acl(Topic, name, pt, "User:ann", "*", Write, Deny);
    // (case, ACLs, allow.everyone.if.no.acl.found, expected)
    let table: Vec<(&str, Vec<AclBinding>, bool, bool)> = vec![
        ("no ACLs, closed", vec![], false, false),
        ("no ACLs, open", vec![], true, true),
        (
            "a literal allow",
            vec![allow("orders", Literal)],
            false,
            true,
        ),
        (
            "a prefixed allow",
            vec![allow("orders-", Prefixed)],
            false,
            true,
        ),
        (
            "allowed and denied the same name",
            vec![allow("orders", Literal), deny("orders", Literal)],
            false,
            false,
        ),
        (
            "a deny prefix covers the allowed name",
            vec![allow("orders-eu", Literal), deny("orders-", Prefixed)],
            false,
            false,
        ),
        (
            "a deny of another name leaves the allow",
            vec![allow("orders", Literal), deny("payments", Literal)],
            false,
            true,
        ),
        (
            "the denied wildcard denies all",
            vec![allow("orders", Literal), deny("*", Literal)],
            false,
            false,
        ),
        (
            "ALL allows WRITE",
            vec![acl(Topic, "t", Literal, "User:*", "*", All, Allow)],
            false,
            true,
        ),
        (
            "READ does not allow WRITE",
            vec![acl(Topic, "t", Literal, "User:ann", "*", Read, Allow)],
            true,
            false,
        ),
        (
            "another host's allow",
            vec![acl(
                Topic, "t", Literal, "User:ann", "10.9.9.9", Write, Allow,
            )],
            false,
            false,
        ),
    ];
    for (case, acls, open, expected) in table {
        assert_eq!(any(&acls, open), expected, "{case}");
    }
    let root = Principal::user("root");
    assert!(authorizer(&[], &["User:root"], false).authorize_any(&root, "h", Write, Topic));
}
