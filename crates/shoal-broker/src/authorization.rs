//! Who may do what: Kafka's ACL authorization of every request (issue #16).
//!
//! **Why here, like this.** The decision itself is `shoal_acl::Authorizer`, a pure function of
//! the ACLs and the request. This module is its edge: it reads `authorizer.class.name`,
//! `super.users` and `allow.everyone.if.no.acl.found`, rebuilds the index when the metadata
//! image's ACLs change (on the metadata follower, before the image takes effect, so a client
//! whose CreateAcls returned is already judged by it), and writes the audit log. A request pays
//! a read lock and a few hash lookups; with no authorizer configured, one branch.
//!
//! **Audit log.** Every denial is an INFO line on the `shoal::audit` target (principal, host,
//! operation, resource, API, the deciding rule), at most [`DENIAL_LOG_LINES_PER_SECOND`] a
//! second so a client retrying a forbidden request cannot flood the log; every denial is also
//! counted in `shoal_authorization_denials_total`. Allowed requests are DEBUG lines.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use shoal_acl::{
    AclBinding, Action, Authorizer, AuthorizerConfig, Operation, Principal, ResourceType,
};
use shoal_config::broker::STANDARD_AUTHORIZER;
use shoal_kafka::RequestContext;
use shoal_meta::MetadataImage;
use uuid::Uuid;

/// Most denial lines the audit log writes per second (the rest are counted only).
pub const DENIAL_LOG_LINES_PER_SECOND: u32 = 100;

/// The operations Kafka reports for a topic (`AclEntry.supportedOperations(TOPIC)`).
pub const TOPIC_OPERATIONS: [Operation; 8] = [
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Describe,
    Operation::Delete,
    Operation::Alter,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// The operations Kafka reports for the cluster (`AclEntry.supportedOperations(CLUSTER)`).
pub const CLUSTER_OPERATIONS: [Operation; 7] = [
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

/// The name Kafka gives the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

pub struct Authorization {
    enabled: bool,
    config: AuthorizerConfig,
    current: RwLock<Arc<Authorizer>>,
    /// The ACLs `current` was built from.
    built_from: Mutex<BTreeMap<Uuid, AclBinding>>,
    denial_log: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("enabled", &self.enabled)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `super.users`: principals separated by `;` (Kafka's separator), blanks ignored.
pub fn parse_super_users(value: &str) -> anyhow::Result<HashSet<Principal>> {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Principal::parse(p).with_context(|| format!("super.users: {p:?}")))
        .collect()
}

impl Authorization {
    /// From the broker settings; an `authorizer.class.name` other than Kafka's
    /// StandardAuthorizer (or empty) is refused by the schema before this runs.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> anyhow::Result<Authorization> {
        let setting = |name: &str| shoal_config::effective(settings, name).unwrap_or_default();
        let class = setting("authorizer.class.name");
        let enabled = match class.trim() {
            "" => false,
            STANDARD_AUTHORIZER => true,
            other => anyhow::bail!(
                "authorizer.class.name={other:?}: Shoal's authorizer is Kafka's \
                 {STANDARD_AUTHORIZER} (or empty for none)"
            ),
        };
        let allow_everyone = setting("allow.everyone.if.no.acl.found");
        let config = AuthorizerConfig {
            super_users: parse_super_users(&setting("super.users"))?,
            allow_everyone_if_no_acl_found: allow_everyone.trim().eq_ignore_ascii_case("true"),
        };
        Ok(Authorization::new(enabled, config))
    }

    pub fn new(enabled: bool, config: AuthorizerConfig) -> Authorization {
        let per_second = NonZeroU32::new(DENIAL_LOG_LINES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Authorization {
            enabled,
            current: RwLock::new(Arc::new(Authorizer::new(config.clone()))),
            config,
            built_from: Mutex::new(BTreeMap::new()),
            denial_log: RateLimiter::direct(Quota::per_second(per_second)),
        }
    }

    /// No authorizer: everything is allowed (Kafka without `authorizer.class.name`).
    pub fn disabled() -> Authorization {
        Authorization::new(false, AuthorizerConfig::default())
    }

    /// Whether an authorizer is configured (the ACL APIs answer SECURITY_DISABLED otherwise).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Brings the index up to `image`'s ACLs (a rebuild only when they changed).
    pub fn update(&self, image: &MetadataImage) {
        let mut built_from = self.built_from.lock().unwrap_or_else(|p| p.into_inner());
        if *built_from == image.acls {
            return;
        }
        let mut authorizer = Authorizer::new(self.config.clone());
        for acl in image.acls.values() {
            authorizer.add(acl.clone());
        }
        tracing::info!(acls = authorizer.len(), "ACLs in force changed");
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(authorizer);
        built_from.clone_from(&image.acls);
    }

    fn authorizer(&self) -> Arc<Authorizer> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the request's principal may do `operation` on the named resource; a denial is
    /// audited.
    pub fn allowed(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        self.check(ctx, operation, resource_type, resource_name, true)
    }

    /// As [`Self::allowed`] but without an audit line or metric: for filtering what a listing
    /// shows (Kafka does not log those denials either) and for authorized-operation fields.
    pub fn allowed_quietly(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        self.check(ctx, operation, resource_type, resource_name, false)
    }

    fn check(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
        audited: bool,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        let host = ctx.peer.ip().to_string();
        let action = Action {
            principal: &ctx.principal,
            host: &host,
            operation,
            resource_type,
            resource_name,
        };
        let decision = self.authorizer().authorize(&action);
        if audited {
            self.audit(ctx, &action, decision.allowed, &decision.rule);
        }
        decision.allowed
    }

    /// Kafka's authorized-operations bit field (bit `code` set for each allowed operation of
    /// `operations`), as Metadata and DescribeCluster report it on request.
    pub fn authorized_operations(
        &self,
        ctx: &RequestContext,
        resource_type: ResourceType,
        resource_name: &str,
        operations: &[Operation],
    ) -> i32 {
        operations
            .iter()
            .filter(|op| self.allowed_quietly(ctx, **op, resource_type, resource_name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Whether the principal may do `operation` on the cluster.
    pub fn allowed_on_cluster(&self, ctx: &RequestContext, operation: Operation) -> bool {
        self.allowed(ctx, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether some resource of `resource_type` could allow `operation` (Kafka's
    /// `authorizeByResourceType`).
    pub fn allowed_on_any(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        let host = ctx.peer.ip().to_string();
        let allowed =
            self.authorizer()
                .authorize_any(&ctx.principal, &host, operation, resource_type);
        if !allowed {
            shoal_metrics::record_authorization_denial(shoal_kafka::api_name(ctx.api_key));
            if self.denial_log.check().is_ok() {
                tracing::info!(target: "shoal::audit", principal = %ctx.principal, %host,
                    %operation, resource_type = %resource_type, resource = "(any)",
                    api = shoal_kafka::api_name(ctx.api_key), decision = "DENIED",
                    "denied: no {resource_type} allows {operation}");
            }
        }
        allowed
    }

    fn audit(
        &self,
        ctx: &RequestContext,
        action: &Action<'_>,
        allowed: bool,
        rule: &shoal_acl::Rule,
    ) {
        if allowed {
            tracing::debug!(target: "shoal::audit", principal = %action.principal,
                host = action.host, operation = %action.operation,
                resource_type = %action.resource_type, resource = action.resource_name,
                api = shoal_kafka::api_name(ctx.api_key), decision = "ALLOWED", rule = ?rule, "allowed");
            return;
        }
        shoal_metrics::record_authorization_denial(shoal_kafka::api_name(ctx.api_key));
        if self.denial_log.check().is_ok() {
            tracing::info!(target: "shoal::audit", principal = %action.principal,
                host = action.host, operation = %action.operation,
                resource_type = %action.resource_type, resource = action.resource_name,
                api = shoal_kafka::api_name(ctx.api_key), decision = "DENIED", rule = ?rule, "denied");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_choose_the_authorizer_and_super_users() {
        let settings = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let none = Authorization::from_settings(&settings(&[])).unwrap();
        assert!(!none.is_enabled());
        let on = Authorization::from_settings(&settings(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin; User:CN=ops,O=acme ;"),
        ]))
        .unwrap();
        assert!(on.is_enabled());
        assert!(!on.config.allow_everyone_if_no_acl_found);
        assert_eq!(on.config.super_users.len(), 2);
        assert!(
            on.config
                .super_users
                .contains(&Principal::user("CN=ops,O=acme"))
        );
        let err = Authorization::from_settings(&settings(&[(
            "authorizer.class.name",
            "kafka.security.authorizer.AclAuthorizer",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains(STANDARD_AUTHORIZER), "{err}");
        assert!(
            Authorization::from_settings(&settings(&[("super.users", "admin")])).is_err(),
            "a super user is Type:name"
        );
    }
}
