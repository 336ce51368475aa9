//! Planning AlterUserScramCredentials: UserScramCredential / RemoveUserScramCredential records
//! (Kafka's `ScramControlManager`). Each user's changes are one item, all or nothing; the
//! broker has already refused unknown mechanisms, duplicates and unacceptable iterations, so
//! what is left is what needs the image: the level, the user, and that a deleted credential
//! exists.

use crate::controller::plan::{Planned, plan_in_order};
use crate::controller::requests::UserScramAlteration;
use crate::error::ControllerError;
use crate::features::SCRAM_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Most users with SCRAM credentials a cluster holds.
pub const MAX_SCRAM_USERS: usize = 100_000;
/// Longest user name.
pub const MAX_USER_NAME_LENGTH: usize = 1_024;

pub fn plan_alter_user_scram_credentials(
    image: &MetadataImage,
    alterations: Vec<UserScramAlteration>,
) -> Vec<Planned<()>> {
    let level = image.metadata_version();
    let items = alterations
        .into_iter()
        .map(|a| {
            if level < SCRAM_METADATA_VERSION {
                return Err(ControllerError::UnsupportedVersion(format!(
                    "SCRAM credentials need metadata.version {SCRAM_METADATA_VERSION}; this \
                     cluster is at {level} (see docs/upgrading.md)"
                )));
            }
            if a.user.is_empty() || a.user.len() > MAX_USER_NAME_LENGTH {
                return Err(ControllerError::UnacceptableCredential(format!(
                    "a user name is 1 to {MAX_USER_NAME_LENGTH} bytes"
                )));
            }
            for credential in &a.upsertions {
                credential
                    .validate()
                    .map_err(|e| ControllerError::UnacceptableCredential(e.to_string()))?;
            }
            Ok(a)
        })
        .collect();
    plan_in_order(image, items, |working, a| {
        let existing = working.scram_credentials.get(&a.user);
        let mut records = Vec::new();
        for mechanism in a.deletions {
            if !existing.is_some_and(|c| c.contains_key(&mechanism)) {
                return Err(ControllerError::ResourceNotFound(format!(
                    "Attempt to delete a user credential that does not exist: {} {mechanism}",
                    a.user
                )));
            }
            records.push(MetadataRecord::RemoveUserScramCredential {
                name: a.user.clone(),
                mechanism,
            });
        }
        if existing.is_none()
            && !a.upsertions.is_empty()
            && working.scram_credentials.len() >= MAX_SCRAM_USERS
        {
            return Err(ControllerError::PolicyViolation(format!(
                "the cluster holds credentials of {MAX_SCRAM_USERS} users, the most it may"
            )));
        }
        for credential in a.upsertions {
            records.push(MetadataRecord::UserScramCredential {
                name: a.user.clone(),
                credential,
            });
        }
        Ok(((), records))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shoal_sasl::{ScramCredential, ScramMechanism};

    fn image() -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        image
            .finalized_features
            .insert("metadata.version".into(), 3);
        image
    }

    fn credential(mechanism: ScramMechanism) -> ScramCredential {
        ScramCredential::from_password(mechanism, "pw", 4096).unwrap()
    }

    fn alter(
        user: &str,
        deletions: &[ScramMechanism],
        upsertions: &[ScramMechanism],
    ) -> UserScramAlteration {
        UserScramAlteration {
            user: user.into(),
            deletions: deletions.to_vec(),
            upsertions: upsertions.iter().map(|m| credential(*m)).collect(),
        }
    }

    #[test]
    fn credentials_are_set_replaced_and_deleted_per_user() {
        use ScramMechanism::{Sha256, Sha512};
        let mut image = image();
        let planned = plan_alter_user_scram_credentials(
            &image,
            vec![
                alter("ann", &[], &[Sha256, Sha512]),
                alter("bob", &[Sha256], &[]),
                alter("", &[], &[Sha256]),
            ],
        );
        assert_eq!(planned[0].as_ref().unwrap().1.len(), 2);
        assert!(
            matches!(planned[1], Err(ControllerError::ResourceNotFound(_))),
            "bob has none"
        );
        assert!(matches!(
            planned[2],
            Err(ControllerError::UnacceptableCredential(_))
        ));
        for r in &planned[0].as_ref().unwrap().1 {
            assert_eq!(image.apply(r), crate::image::ApplyOutcome::Applied);
        }
        assert_eq!(image.scram_credentials["ann"].len(), 2);
        // Deleting one and replacing the other in one go.
        let planned =
            plan_alter_user_scram_credentials(&image, vec![alter("ann", &[Sha512], &[Sha256])]);
        for r in &planned[0].as_ref().unwrap().1 {
            assert_eq!(image.apply(r), crate::image::ApplyOutcome::Applied);
        }
        assert_eq!(
            image.scram_credentials["ann"].keys().collect::<Vec<_>>(),
            vec![&Sha256]
        );
        // The last credential gone: the user is gone.
        let planned = plan_alter_user_scram_credentials(&image, vec![alter("ann", &[Sha256], &[])]);
        for r in &planned[0].as_ref().unwrap().1 {
            assert_eq!(image.apply(r), crate::image::ApplyOutcome::Applied);
        }
        assert!(image.scram_credentials.is_empty());
    }

    #[test]
    fn credentials_need_metadata_version_3_and_well_formed_keys() {
        let mut old = MetadataImage::empty("c");
        old.finalized_features.insert("metadata.version".into(), 2);
        let planned = plan_alter_user_scram_credentials(
            &old,
            vec![alter("ann", &[], &[ScramMechanism::Sha256])],
        );
        assert!(matches!(
            planned[0],
            Err(ControllerError::UnsupportedVersion(_))
        ));
        let mut bad = alter("ann", &[], &[ScramMechanism::Sha256]);
        bad.upsertions[0].stored_key.pop();
        let planned = plan_alter_user_scram_credentials(&image(), vec![bad]);
        assert!(matches!(
            planned[0],
            Err(ControllerError::UnacceptableCredential(_))
        ));
    }
}
