//! A property of the one configuration schema: every topic config the controller accepts opens
//! a log. Values are drawn around each config's limits (and far outside them) from a fixed
//! seed; whatever passes the controller's checks (`validate_topic_config` + `check_log_config`,
//! what CreateTopics and IncrementalAlterConfigs run) must open a real log on disk, built by the
//! broker's own `partition_config`.

use std::collections::BTreeMap;

use shoal_broker::log_config::partition_config;
use shoal_log::Log;
use shoal_meta::topic_config::{TOPIC_CONFIGS, check_log_config, validate_topic_config};

/// Candidate values for one config: its default, its limits ± 1, and random noise.
fn candidates(rng: &mut fastrand::Rng, default: &str) -> Vec<String> {
    let mut out = vec![default.to_string()];
    for edge in [
        i64::MIN,
        -2,
        -1,
        0,
        1,
        4,
        12,
        13,
        14,
        20,
        60,
        61,
        62,
        1024,
        i64::from(i32::MAX),
        i64::from(i32::MAX) + 1,
        i64::MAX,
    ] {
        out.push(edge.to_string());
    }
    for _ in 0..4 {
        out.push(rng.i64(-10..2_000_000).to_string());
    }
    out.extend(
        [
            "0.5",
            "1.5",
            "-0.1",
            "NaN",
            "true",
            "false",
            "delete",
            "compact",
            "compact,delete",
            "bogus",
            "",
            "producer",
            "zstd",
            "CreateTime",
            "LogAppendTime",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    out
}

#[test]
fn every_topic_config_the_controller_accepts_opens_a_log() {
    let mut rng = fastrand::Rng::with_seed(14);
    let broker = BTreeMap::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..3 {
        for def in TOPIC_CONFIGS {
            for value in candidates(&mut rng, def.default()) {
                let mut overrides = BTreeMap::new();
                // A second config set at random too, so combinations are tried.
                if round > 0 {
                    let other = &TOPIC_CONFIGS[rng.usize(..TOPIC_CONFIGS.len())];
                    let v = candidates(&mut rng, other.default());
                    if let Ok(v) = validate_topic_config(other.name, &v[rng.usize(..v.len())]) {
                        overrides.insert(other.name.to_string(), v);
                    }
                }
                let Ok(normalized) = validate_topic_config(def.name, &value) else {
                    refused += 1;
                    continue;
                };
                overrides.insert(def.name.to_string(), normalized);
                if check_log_config(&overrides, &broker).is_err() {
                    refused += 1;
                    continue;
                }
                accepted += 1;
                let config = partition_config(&overrides, &broker)
                    .unwrap_or_else(|e| panic!("{overrides:?} accepted but not buildable: {e}"));
                let log_dir = dir.path().join(format!("t-{accepted}"));
                let log = Log::open(&log_dir, config.log, 0)
                    .unwrap_or_else(|e| panic!("{overrides:?} accepted but the log fails: {e}"));
                drop(log);
                std::fs::remove_dir_all(&log_dir).unwrap();
            }
        }
    }
    // The draw reaches both sides of the checks.
    assert!(
        accepted > 200 && refused > 200,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn the_issues_examples_are_refused_naming_the_setting() {
    let broker = BTreeMap::new();
    for (name, value) in [
        ("segment.bytes", "20"),
        ("retention.ms", "-5"),
        ("cleanup.policy", "bogus"),
        ("max.message.bytes", "-1"),
    ] {
        let refused = validate_topic_config(name, value).and_then(|v| {
            let overrides = BTreeMap::from([(name.to_string(), v)]);
            check_log_config(&overrides, &broker)
        });
        let error = refused.expect_err(name).to_string();
        assert!(error.contains(name), "{name}={value}: {error}");
    }
}
