//! The SCRAM credential store a SASL listener authenticates against: the broker's current
//! metadata image (credentials are metadata records, so every broker has every user).

use std::sync::Arc;

use shoal_kafka::sasl::CredentialStore;
use shoal_sasl::{ScramCredential, ScramMechanism};

use crate::replica_manager::ReplicaManager;

pub struct ImageCredentials(pub Arc<ReplicaManager>);

impl CredentialStore for ImageCredentials {
    fn scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0
            .image()
            .scram_credentials
            .get(user)
            .and_then(|by_mechanism| by_mechanism.get(&mechanism))
            .cloned()
    }
}
