//! `shoalctl cluster features` and `cluster upgrade` (Kafka's `kafka-features.sh describe` and
//! `upgrade --feature NAME=LEVEL [--dry-run]`): the feature levels a broker supports and the
//! cluster has finalized (ApiVersions v4), and raising one (UpdateFeatures; all or none, ALTER
//! on the cluster; upgrades only). Shoal's own metadata format goes by
//! `shoal.metadata.version`, as ApiVersions reports it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{ApiVersionsRequest, UpdateFeaturesRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::check;
use crate::cli::UpgradeArgs;
use crate::kafka::Client;
use crate::output::Output;

/// ApiVersions v3+ carries the feature tags; v4 also lists ranges that start at 0.
const API_VERSIONS_WITH_FEATURES: i16 = 4;
/// UpdateFeatures' upgrade type for an upgrade (v1+).
const UPGRADE_TYPE_UPGRADE: i8 = 1;
/// Bound on how long the controller may take to commit the new levels.
const UPDATE_TIMEOUT_MS: i32 = 30_000;

/// One feature: its supported range here and its finalized level (0 when none).
struct FeatureRow {
    name: String,
    supported: Option<(i16, i16)>,
    finalized: i16,
}

pub async fn describe(client: &mut Client, out: &Output) -> anyhow::Result<ExitCode> {
    let connection = client.any();
    let version = connection
        .version::<ApiVersionsRequest>()?
        .min(API_VERSIONS_WITH_FEATURES);
    if version < 3 {
        bail!("the broker's ApiVersions (v{version}) reports no features");
    }
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("shoalctl"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let response = connection.call_at(request, version).await?;
    check("ApiVersions", response.error_code, None)?;
    let mut rows: BTreeMap<String, FeatureRow> = BTreeMap::new();
    for f in &response.supported_features {
        rows.insert(
            f.name.to_string(),
            FeatureRow {
                name: f.name.to_string(),
                supported: Some((f.min_version, f.max_version)),
                finalized: 0,
            },
        );
    }
    for f in &response.finalized_features {
        rows.entry(f.name.to_string())
            .or_insert_with(|| FeatureRow {
                name: f.name.to_string(),
                supported: None,
                finalized: 0,
            })
            .finalized = f.max_version_level;
    }
    let value = json!({
        "finalized_features_epoch": response.finalized_features_epoch,
        "features": rows.values().map(|r| json!({
            "name": r.name,
            "supported_min": r.supported.map(|s| s.0),
            "supported_max": r.supported.map(|s| s.1),
            "finalized": r.finalized,
        })).collect::<Vec<_>>(),
    });
    let title = format!(
        "finalized features epoch {}",
        response.finalized_features_epoch
    );
    out.emit(
        &value,
        &[(
            &title,
            vec!["FEATURE", "SUPPORTED", "FINALIZED"],
            rows.values()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.supported
                            .map_or("-".into(), |(min, max)| format!("{min}-{max}")),
                        r.finalized.to_string(),
                    ]
                })
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}

/// `NAME=LEVEL`.
fn parse_update(raw: &str) -> anyhow::Result<(String, i16)> {
    let (name, level) = raw
        .split_once('=')
        .with_context(|| format!("--feature {raw:?} must look like NAME=LEVEL"))?;
    let level = level
        .trim()
        .parse::<i16>()
        .with_context(|| format!("--feature {raw:?}: the level must be a small integer"))?;
    Ok((name.trim().to_string(), level))
}

pub async fn upgrade(
    client: &mut Client,
    args: &UpgradeArgs,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    if args.features.is_empty() {
        bail!("name at least one --feature NAME=LEVEL");
    }
    let updates: Vec<(String, i16)> = args
        .features
        .iter()
        .map(|f| parse_update(f))
        .collect::<anyhow::Result<_>>()?;
    let connection = client.any();
    let version = connection.version::<UpdateFeaturesRequest>()?;
    if args.dry_run && version < 1 {
        bail!("the broker's UpdateFeatures (v0) cannot validate without applying");
    }
    let request = UpdateFeaturesRequest::default()
        .with_timeout_ms(UPDATE_TIMEOUT_MS)
        .with_validate_only(args.dry_run)
        .with_feature_updates(
            updates
                .iter()
                .map(|(name, level)| {
                    FeatureUpdateKey::default()
                        .with_feature(StrBytes::from_string(name.clone()))
                        .with_max_version_level(*level)
                        .with_upgrade_type(UPGRADE_TYPE_UPGRADE)
                })
                .collect(),
        );
    let response = connection.call_at(request, version).await?;
    check(
        "UpdateFeatures",
        response.error_code,
        response.error_message.as_deref(),
    )?;
    let state = if args.dry_run { "valid" } else { "finalized" };
    let value = json!({
        "dry_run": args.dry_run,
        "features": updates.iter().map(|(name, level)| json!({"name": name, "level": level, "state": state}))
            .collect::<Vec<_>>(),
    });
    out.emit(
        &value,
        &[(
            if args.dry_run {
                "dry run: nothing changed"
            } else {
                ""
            },
            vec!["FEATURE", "LEVEL", "STATE"],
            updates
                .iter()
                .map(|(name, level)| vec![name.clone(), level.to_string(), state.to_string()])
                .collect(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}
