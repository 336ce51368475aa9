//! "Did you mean": the known setting closest to an unknown name, for start-up errors.

use crate::broker::BROKER_CONFIGS;

/// The known broker setting most similar to `unknown`, if any is reasonably close.
pub fn closest_setting(unknown: &str) -> Option<&'static str> {
    BROKER_CONFIGS
        .iter()
        .map(|def| (strsim::jaro_winkler(unknown, def.name), def.name))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(closest_setting("num.partitionz"), Some("num.partitions"));
        assert_eq!(
            closest_setting("log.retention.hour"),
            Some("log.retention.hours")
        );
        assert_eq!(
            closest_setting("offsets.topic.replication"),
            Some("offsets.topic.replication.factor")
        );
        assert_eq!(closest_setting("zzzz"), None);
    }
}
