//! Recording each controller voter's metadata directory, and naming a new one (KIP-853).
//!
//! The active controller records a voter's directory the first time it hears from the voter
//! (`VoterDirectory` records, trust on first use: Kafka's static voter lists have no
//! directories at all). From then on a node with that id but another directory does not vote
//! (`crate::voter_directory`). `AddVoter` names the new directory of a voter whose disk was
//! replaced. It need not wait for the node to catch up: the record commits on a majority of the
//! other voters (a wiped voter's answers do not count), so each majority of the new voter set
//! holds one of them, with every entry committed before. Planning is pure; proposing is in
//! `Controller::add_voter`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::controller::Controller;
use crate::error::ControllerError;
use crate::features::VOTER_DIRECTORIES_METADATA_VERSION;
use crate::image::MetadataImage;
use crate::meta_properties::format_directory_id;
use crate::records::MetadataRecord;

/// VoterDirectory records for the voters with no recorded directory that reported one.
pub fn plan_record_voter_directories(
    image: &MetadataImage,
    voter_ids: &[i32],
    reported: &BTreeMap<i32, Uuid>,
) -> Vec<MetadataRecord> {
    if image.metadata_version() < VOTER_DIRECTORIES_METADATA_VERSION {
        return Vec::new();
    }
    voter_ids
        .iter()
        .filter(|id| !image.voter_directories.contains_key(id))
        .filter_map(|id| {
            reported
                .get(id)
                .map(|directory_id| MetadataRecord::VoterDirectory {
                    voter_id: *id,
                    directory_id: *directory_id,
                })
        })
        .collect()
}

/// What AddVoter will record: the directory, and the one it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedVoter {
    pub voter_id: i32,
    pub directory_id: Uuid,
    pub previous: Option<Uuid>,
}

/// Checks an AddVoter request against the image and what the voter reports.
/// `requested` is the directory the operator named (`None`: the reported one).
pub fn plan_add_voter(
    image: &MetadataImage,
    voter_ids: &[i32],
    voter_id: i32,
    requested: Option<Uuid>,
    reported: Option<Uuid>,
) -> Result<PlannedVoter, ControllerError> {
    if image.metadata_version() < VOTER_DIRECTORIES_METADATA_VERSION {
        return Err(ControllerError::UnsupportedVersion(format!(
            "Voter directories need metadata.version {VOTER_DIRECTORIES_METADATA_VERSION}; this \
             cluster is at {} (raise it with UpdateFeatures).",
            image.metadata_version()
        )));
    }
    if !voter_ids.contains(&voter_id) {
        return Err(ControllerError::InvalidRequest(format!(
            "node {voter_id} is not a voter (voters {voter_ids:?}); a new controller is added \
             with its address"
        )));
    }
    let Some(reported) = reported else {
        return Err(ControllerError::InvalidRequest(format!(
            "voter {voter_id} has not answered the leader yet; start it and retry"
        )));
    };
    let directory_id = requested.unwrap_or(reported);
    if directory_id != reported {
        return Err(ControllerError::InvalidRequest(format!(
            "voter {voter_id} runs with metadata directory {}, not {}",
            format_directory_id(reported),
            format_directory_id(directory_id)
        )));
    }
    let previous = image.voter_directories.get(&voter_id).copied();
    if previous == Some(directory_id) {
        return Err(ControllerError::InvalidRequest(format!(
            "DUPLICATE_VOTER: voter {voter_id} is already a voter with directory {}",
            format_directory_id(directory_id)
        )));
    }
    Ok(PlannedVoter {
        voter_id,
        directory_id,
        previous,
    })
}

impl Controller {
    /// Records the directories of voters seen for the first time. Run by the session check
    /// on the leader; cheap when every voter is recorded.
    pub(crate) async fn record_voter_directories(&self) {
        let reported = self.reported_directories();
        if plan_record_voter_directories(&self.images.borrow(), &self.voters.ids(), &reported)
            .is_empty()
        {
            return;
        }
        let Some((_writer, image, deadline)) = self.background_writer("voter directories").await
        else {
            return;
        };
        let records = plan_record_voter_directories(&image, &self.voters.ids(), &reported);
        if records.is_empty() {
            return;
        }
        match self.propose(records.clone(), deadline).await {
            Ok(log_index) => {
                for record in &records {
                    if let MetadataRecord::VoterDirectory {
                        voter_id,
                        directory_id,
                    } = record
                    {
                        tracing::info!(
                            voter_id,
                            directory_id = %format_directory_id(*directory_id),
                            log_index,
                            "recorded controller voter's metadata directory"
                        );
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not record voter directories"),
        }
    }

    /// What the voters reported to this node, and this node's own directory.
    fn reported_directories(&self) -> BTreeMap<i32, Uuid> {
        let mut reported = self.observed_directories.all();
        reported.insert(self.node_id, self.directory_id);
        reported
    }

    /// AddVoter: records `voter_id`'s new directory (see the module docs: safe without waiting
    /// for it to catch up). Returns the plan carried out and the log index of its record.
    pub(crate) async fn add_voter(
        &self,
        voter_id: i32,
        requested: Option<Uuid>,
        timeout: Duration,
    ) -> Result<(PlannedVoter, u64), ControllerError> {
        if let Some(e) = self.not_running() {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        let _writer = self.write_lock.lock().await;
        let image = self.caught_up_image(deadline).await?;
        let reported = self.reported_directories().get(&voter_id).copied();
        let plan = plan_add_voter(&image, &self.voters.ids(), voter_id, requested, reported)?;
        let log_index = self
            .propose(
                vec![MetadataRecord::VoterDirectory {
                    voter_id,
                    directory_id: plan.directory_id,
                }],
                deadline,
            )
            .await?;
        tracing::info!(
            voter_id,
            directory_id = %format_directory_id(plan.directory_id),
            previous = %plan.previous.map(format_directory_id).unwrap_or_default(),
            log_index,
            "controller voter's new metadata directory recorded: it votes again"
        );
        Ok((plan, log_index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::METADATA_VERSION;

    const OLD: Uuid = Uuid::from_u128(0x01d);
    const NEW: Uuid = Uuid::from_u128(0x2e3);

    fn image_at(level: i16, recorded: &[(i32, Uuid)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        image
            .finalized_features
            .insert(METADATA_VERSION.to_string(), level);
        image.voter_directories = recorded.iter().copied().collect();
        image
    }

    #[test]
    fn first_sightings_are_recorded_once_and_only_at_level_5() {
        let reported = BTreeMap::from([(1, OLD), (2, NEW), (9, NEW)]);
        type Case = (i16, &'static [(i32, Uuid)], Vec<i32>);
        let cases: [Case; 4] = [
            // Below level 5 nothing is written.
            (4, &[], vec![]),
            // Voters 1 and 2 reported; 3 did not; 9 is no voter.
            (5, &[], vec![1, 2]),
            // A recorded voter is never re-recorded from a report, even a different one.
            (5, &[(1, NEW), (2, NEW)], vec![]),
            (5, &[(2, OLD)], vec![1]),
        ];
        for (level, recorded, expected) in cases {
            let planned =
                plan_record_voter_directories(&image_at(level, recorded), &[1, 2, 3], &reported);
            let ids: Vec<i32> = planned
                .iter()
                .map(|r| match r {
                    MetadataRecord::VoterDirectory {
                        voter_id,
                        directory_id,
                    } => {
                        assert_eq!(Some(directory_id), reported.get(voter_id));
                        *voter_id
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(ids, expected, "level {level} recorded {recorded:?}");
        }
    }

    #[test]
    fn add_voter_names_the_directory_the_voter_runs_with() {
        let image = image_at(5, &[(2, OLD)]);
        let voters = [1, 2, 3];
        let ok = |requested, reported| plan_add_voter(&image, &voters, 2, requested, reported);
        assert_eq!(
            ok(None, Some(NEW)),
            Ok(PlannedVoter {
                voter_id: 2,
                directory_id: NEW,
                previous: Some(OLD)
            })
        );
        assert_eq!(ok(Some(NEW), Some(NEW)).map(|p| p.directory_id), Ok(NEW));
        // Another directory than the one it runs with, or a voter not heard from.
        assert!(matches!(
            ok(Some(OLD), Some(NEW)),
            Err(ControllerError::InvalidRequest(m)) if m.contains("runs with")
        ));
        assert!(matches!(
            ok(Some(NEW), None),
            Err(ControllerError::InvalidRequest(m)) if m.contains("not answered")
        ));
        // Already the recorded one.
        assert!(matches!(
            ok(None, Some(OLD)),
            Err(ControllerError::InvalidRequest(m)) if m.contains("already")
        ));
        // Not a configured voter; too old a metadata.version.
        assert!(matches!(
            plan_add_voter(&image, &voters, 7, None, Some(NEW)),
            Err(ControllerError::InvalidRequest(m)) if m.contains("is not a voter")
        ));
        assert!(matches!(
            plan_add_voter(&image_at(4, &[]), &voters, 2, None, Some(NEW)),
            Err(ControllerError::UnsupportedVersion(_))
        ));
    }
}
