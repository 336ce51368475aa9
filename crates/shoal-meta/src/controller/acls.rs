//! Planning CreateAcls and DeleteAcls: AccessControlEntry / RemoveAccessControlEntry records.
//!
//! As Kafka's `AclControlManager`: an ACL identical to one in force is not added again (the
//! creation still succeeds); a delete filter removes every ACL it matches that an earlier
//! filter of the same request did not already remove, and reports them. ACLs exist from
//! `metadata.version` 3; an older cluster refuses them (UNSUPPORTED_VERSION) rather than
//! write records its nodes may not read.

use shoal_acl::{AclBinding, AclFilter};
use uuid::Uuid;

use crate::controller::plan::{MAX_RECORDS_PER_ENTRY, Planned, plan_in_order};
use crate::error::ControllerError;
use crate::features::ACLS_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Most ACLs a cluster holds. A DeleteAcls filter may match all of them, and its records are
/// one Raft entry, so this is the entry bound.
pub const MAX_ACLS: usize = MAX_RECORDS_PER_ENTRY;
/// Longest resource name, principal or host an ACL may carry.
pub const MAX_ACL_FIELD_LENGTH: usize = 1_024;

fn check_level(image: &MetadataImage) -> Result<(), ControllerError> {
    let level = image.metadata_version();
    if level < ACLS_METADATA_VERSION {
        return Err(ControllerError::UnsupportedVersion(format!(
            "ACLs need metadata.version {ACLS_METADATA_VERSION}; this cluster is at {level} \
             (see docs/upgrading.md)"
        )));
    }
    Ok(())
}

fn check_acl(acl: &AclBinding) -> Result<(), ControllerError> {
    acl.validate()
        .map_err(|e| ControllerError::InvalidRequest(e.to_string()))?;
    let longest = [
        acl.pattern.name.len(),
        acl.entry.host.len(),
        acl.entry.principal.kind.len() + acl.entry.principal.name.len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    if longest > MAX_ACL_FIELD_LENGTH {
        return Err(ControllerError::InvalidRequest(format!(
            "an ACL's resource name, principal and host are at most {MAX_ACL_FIELD_LENGTH} bytes"
        )));
    }
    Ok(())
}

/// Plans each ACL of a CreateAcls request; `new_id` names the ACLs that are added.
pub fn plan_create_acls(
    image: &MetadataImage,
    acls: Vec<AclBinding>,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Vec<Planned<()>> {
    let items = acls
        .into_iter()
        .map(|acl| {
            check_level(image)?;
            check_acl(&acl)?;
            Ok(acl)
        })
        .collect();
    plan_in_order(image, items, |working, acl| {
        if working.acls.values().any(|existing| *existing == acl) {
            return Ok(((), Vec::new()));
        }
        if working.acls.len() >= MAX_ACLS {
            return Err(ControllerError::PolicyViolation(format!(
                "the cluster holds {MAX_ACLS} ACLs, the most it may; delete some first"
            )));
        }
        let mut id = new_id();
        while working.acls.contains_key(&id) {
            id = new_id();
        }
        Ok(((), vec![MetadataRecord::AccessControlEntry { id, acl }]))
    })
}

/// Plans each filter of a DeleteAcls request; the result is the ACLs it removes.
pub fn plan_delete_acls(
    image: &MetadataImage,
    filters: Vec<AclFilter>,
) -> Vec<Planned<Vec<AclBinding>>> {
    let items = filters.into_iter().map(Ok).collect();
    plan_in_order(image, items, |working, filter| {
        let (deleted, records) = working
            .acls
            .iter()
            .filter(|(_, acl)| filter.matches(acl))
            .map(|(id, acl)| {
                (
                    acl.clone(),
                    MetadataRecord::RemoveAccessControlEntry { id: *id },
                )
            })
            .unzip();
        Ok((deleted, records))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shoal_acl::{
        AclEntry, Operation, PatternFilter, PatternType, Permission, Principal, ResourcePattern,
        ResourceType,
    };

    fn acl(name: &str, pattern_type: PatternType, principal: &str, op: Operation) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: name.to_owned(),
                pattern_type,
            },
            entry: AclEntry {
                principal: Principal::parse(principal).unwrap(),
                host: "*".to_owned(),
                operation: op,
                permission: Permission::Allow,
            },
        }
    }

    fn image_at(level: i16) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        image
            .finalized_features
            .insert("metadata.version".into(), level);
        image
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    fn apply(image: &mut MetadataImage, planned: &[Planned<impl Clone>]) {
        for p in planned {
            for r in &p.as_ref().unwrap().1 {
                assert_eq!(image.apply(r), crate::image::ApplyOutcome::Applied);
            }
        }
    }

    #[test]
    fn creation_adds_new_acls_once_and_refuses_invalid_ones() {
        let mut image = image_at(3);
        let read = acl(
            "orders-",
            PatternType::Prefixed,
            "User:ann",
            Operation::Read,
        );
        let mut bad = read.clone();
        bad.pattern.name = "*".into();
        let planned = plan_create_acls(&image, vec![read.clone(), read.clone(), bad], &mut ids());
        assert_eq!(planned[0].as_ref().unwrap().1.len(), 1);
        assert!(
            planned[1].as_ref().unwrap().1.is_empty(),
            "the same ACL twice in one request is added once"
        );
        assert!(matches!(
            planned[2],
            Err(ControllerError::InvalidRequest(_))
        ));
        apply(&mut image, &planned[..2]);
        assert_eq!(image.acls.len(), 1);
        let again = plan_create_acls(&image, vec![read], &mut ids());
        assert!(again[0].as_ref().unwrap().1.is_empty(), "already in force");
    }

    #[test]
    fn acls_need_metadata_version_3() {
        let planned = plan_create_acls(
            &image_at(2),
            vec![acl("t", PatternType::Literal, "User:a", Operation::Read)],
            &mut ids(),
        );
        let Err(ControllerError::UnsupportedVersion(why)) = &planned[0] else {
            panic!("{planned:?}")
        };
        assert!(
            why.contains("metadata.version 3") && why.contains("at 2"),
            "{why}"
        );
    }

    #[test]
    fn the_acl_count_is_bounded() {
        let mut image = image_at(3);
        for i in 0..MAX_ACLS {
            let _ = image.apply(&MetadataRecord::AccessControlEntry {
                id: Uuid::from_u128(u128::MAX - i as u128),
                acl: acl(
                    &format!("t{i}"),
                    PatternType::Literal,
                    "User:a",
                    Operation::Read,
                ),
            });
        }
        let planned = plan_create_acls(
            &image,
            vec![acl(
                "one-more",
                PatternType::Literal,
                "User:a",
                Operation::Read,
            )],
            &mut ids(),
        );
        assert!(matches!(
            planned[0],
            Err(ControllerError::PolicyViolation(_))
        ));
    }

    #[test]
    fn delete_filters_remove_what_they_match_once() {
        let mut image = image_at(3);
        let a = acl(
            "orders-eu",
            PatternType::Literal,
            "User:ann",
            Operation::Read,
        );
        let b = acl(
            "orders-",
            PatternType::Prefixed,
            "User:ann",
            Operation::Write,
        );
        let c = acl(
            "payments",
            PatternType::Literal,
            "User:bob",
            Operation::Read,
        );
        let planned = plan_create_acls(&image, vec![a.clone(), b.clone(), c.clone()], &mut ids());
        apply(&mut image, &planned);
        let by_principal = AclFilter {
            principal: Some(Principal::parse("User:ann").unwrap()),
            ..AclFilter::default()
        };
        let matching_orders_eu = AclFilter {
            resource_type: Some(ResourceType::Topic),
            name: Some("orders-eu".into()),
            pattern: PatternFilter::Match,
            ..AclFilter::default()
        };
        let planned = plan_delete_acls(&image, vec![matching_orders_eu, by_principal]);
        let first = &planned[0].as_ref().unwrap().0;
        assert_eq!(
            first.len(),
            2,
            "orders-eu literally and by the orders- prefix"
        );
        assert!(first.contains(&a) && first.contains(&b));
        assert!(
            planned[1].as_ref().unwrap().0.is_empty(),
            "already removed by the first filter"
        );
        apply(&mut image, &planned);
        assert_eq!(image.acls.values().collect::<Vec<_>>(), vec![&c]);
    }
}
