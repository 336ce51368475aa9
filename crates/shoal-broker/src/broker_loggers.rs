//! BROKER_LOGGER configs (`kafka-configs --entity-type broker-loggers --entity-name N`): this
//! process's log level per logger, read and changed while it runs, and gone at a restart, as
//! Kafka's are (they are not stored in the metadata log).
//!
//! A logger is a tracing target (a module path such as `shoal_broker::replication`), and
//! `root` is the level of everything else, Kafka's root logger. The levels are the directives
//! of the process's log filter (`SHOAL_LOG`); a change rebuilds the filter and swaps it into
//! the running subscriber. Directives the filter holds that are not a plain `target=level`
//! (span or field filters) are kept as they are. Kafka's level names are accepted: ALL is
//! TRACE, FATAL is ERROR, OFF turns a logger off.
//!
//! The process-wide subscriber is installed once by the server binary ([`install`]); without
//! it (tests, embedding) BROKER_LOGGER resources are refused.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Kafka's name of the root logger.
pub const ROOT_LOGGER: &str = "root";

/// Kafka's valid log levels (`LogLevelConfig.VALID_LOG_LEVELS`), in its order.
pub const VALID_LEVELS: [&str; 8] = [
    "ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN",
];

/// Most loggers with their own level (directives beyond the root).
pub const MAX_LOGGERS: usize = 1_000;

/// Swaps a new filter (tracing's env-filter syntax) into the running subscriber.
pub type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// A change asked for: set a level, or remove a logger's own level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggerChange {
    Set { logger: String, level: String },
    Delete { logger: String },
}

/// Why a change is refused: (INVALID_CONFIG or INVALID_REQUEST, Kafka's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggerRefusal {
    InvalidConfig(String),
    InvalidRequest(String),
}

/// The levels a filter says: the root's, each target's, and directives kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerLevels {
    root: String,
    targets: BTreeMap<String, String>,
    other: Vec<String>,
}

fn tracing_level(kafka_level: &str) -> Option<&'static str> {
    match kafka_level.trim().to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => Some("trace"),
        "DEBUG" => Some("debug"),
        "INFO" => Some("info"),
        "WARN" => Some("warn"),
        "ERROR" | "FATAL" => Some("error"),
        "OFF" => Some("off"),
        _ => None,
    }
}

fn is_target(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
}

impl LoggerLevels {
    /// The levels of a filter string (`info,openraft=warn,...`).
    pub fn parse(filter: &str) -> LoggerLevels {
        let mut levels = LoggerLevels {
            root: "info".to_string(),
            targets: BTreeMap::new(),
            other: Vec::new(),
        };
        for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match tracing_level(directive) {
                    Some(level) => levels.root = level.to_string(),
                    // A bare target means everything from it.
                    None if is_target(directive) => {
                        levels
                            .targets
                            .insert(directive.to_string(), "trace".to_string());
                    }
                    None => levels.other.push(directive.to_string()),
                },
                Some((target, level)) if is_target(target) => match tracing_level(level) {
                    Some(level) => {
                        levels.targets.insert(target.to_string(), level.to_string());
                    }
                    None => levels.other.push(directive.to_string()),
                },
                Some(_) => levels.other.push(directive.to_string()),
            }
        }
        levels
    }

    /// The filter string for these levels.
    pub fn to_filter(&self) -> String {
        std::iter::once(self.root.clone())
            .chain(self.targets.iter().map(|(t, l)| format!("{t}={l}")))
            .chain(self.other.iter().cloned())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every logger with its level in Kafka's names, root first.
    pub fn describe(&self) -> Vec<(String, String)> {
        std::iter::once((ROOT_LOGGER.to_string(), self.root.to_ascii_uppercase()))
            .chain(
                self.targets
                    .iter()
                    .map(|(t, l)| (t.clone(), l.to_ascii_uppercase())),
            )
            .collect()
    }

    /// Applies `changes`, all or none (Kafka's `validateLogLevelConfigs` first).
    pub fn apply(&mut self, changes: &[LoggerChange]) -> Result<(), LoggerRefusal> {
        let mut next = self.clone();
        for change in changes {
            match change {
                LoggerChange::Set { logger, level } => {
                    let Some(level) = tracing_level(level) else {
                        return Err(LoggerRefusal::InvalidConfig(format!(
                            "Cannot set the log level of {logger} to {level} as it is not a \
                             supported log level. Valid log levels are {}",
                            VALID_LEVELS.join(", ")
                        )));
                    };
                    if logger == ROOT_LOGGER {
                        next.root = level.to_string();
                    } else if is_target(logger) {
                        next.targets.insert(logger.clone(), level.to_string());
                    } else {
                        return Err(LoggerRefusal::InvalidConfig(format!(
                            "Logger {logger} does not exist!"
                        )));
                    }
                }
                LoggerChange::Delete { logger } => {
                    if logger == ROOT_LOGGER {
                        return Err(LoggerRefusal::InvalidConfig(
                            "Removing the log level of the root logger is not allowed".into(),
                        ));
                    }
                    next.targets.remove(logger);
                }
            }
        }
        if next.targets.len() > MAX_LOGGERS {
            return Err(LoggerRefusal::InvalidRequest(format!(
                "at most {MAX_LOGGERS} loggers may have their own level"
            )));
        }
        *self = next;
        Ok(())
    }
}

/// The process's loggers, once installed.
pub struct BrokerLoggers {
    levels: Mutex<LoggerLevels>,
    reload: Reload,
}

static INSTALLED: OnceLock<BrokerLoggers> = OnceLock::new();

/// Installs the running subscriber's filter (`initial`) and how to swap it; the first call
/// wins.
pub fn install(initial: &str, reload: Reload) {
    let _ = INSTALLED.set(BrokerLoggers {
        levels: Mutex::new(LoggerLevels::parse(initial)),
        reload,
    });
}

/// The process's loggers, if the server installed them.
pub fn installed() -> Option<&'static BrokerLoggers> {
    INSTALLED.get()
}

impl BrokerLoggers {
    pub fn describe(&self) -> Vec<(String, String)> {
        self.levels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .describe()
    }

    /// Applies `changes` to the running subscriber (or, `validate_only`, only checks them).
    pub fn apply(
        &self,
        changes: &[LoggerChange],
        validate_only: bool,
    ) -> Result<(), LoggerRefusal> {
        let mut levels = self.levels.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = levels.clone();
        next.apply(changes)?;
        if validate_only {
            return Ok(());
        }
        (self.reload)(&next.to_filter()).map_err(LoggerRefusal::InvalidConfig)?;
        tracing::info!(filter = %next.to_filter(), "log levels changed (BROKER_LOGGER)");
        *levels = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(logger: &str, level: &str) -> LoggerChange {
        LoggerChange::Set {
            logger: logger.into(),
            level: level.into(),
        }
    }

    #[test]
    fn levels_round_trip_through_the_filter() {
        let levels = LoggerLevels::parse("info,openraft=warn,sled=warn,[span]=debug");
        assert_eq!(
            levels.to_filter(),
            "info,openraft=warn,sled=warn,[span]=debug"
        );
        assert_eq!(
            levels.describe(),
            vec![
                ("root".to_string(), "INFO".to_string()),
                ("openraft".to_string(), "WARN".to_string()),
                ("sled".to_string(), "WARN".to_string()),
            ]
        );
    }

    #[test]
    fn changes_follow_kafkas_rules_and_are_all_or_nothing() {
        let mut levels = LoggerLevels::parse("info,openraft=warn");
        // (changes, expected filter or refusal)
        let cases: Vec<(Vec<LoggerChange>, Result<&str, ()>)> = vec![
            (
                vec![set("shoal_broker::replication", "DEBUG")],
                Ok("info,openraft=warn,shoal_broker::replication=debug"),
            ),
            (
                vec![set("root", "warn")],
                Ok("warn,openraft=warn,shoal_broker::replication=debug"),
            ),
            (
                vec![LoggerChange::Delete {
                    logger: "shoal_broker::replication".into(),
                }],
                Ok("warn,openraft=warn"),
            ),
            (
                vec![set("openraft", "FATAL"), set("sled", "ALL")],
                Ok("warn,openraft=error,sled=trace"),
            ),
            // A bad level refuses the whole change.
            (vec![set("openraft", "info"), set("sled", "LOUD")], Err(())),
            (
                vec![LoggerChange::Delete {
                    logger: "root".into(),
                }],
                Err(()),
            ),
            (vec![set("no such logger", "INFO")], Err(())),
        ];
        for (changes, expected) in cases {
            let got = levels
                .apply(&changes)
                .map(|()| levels.to_filter())
                .map_err(|_| ());
            assert_eq!(got.as_deref().map_err(|_| ()), expected, "{changes:?}");
        }
        assert_eq!(levels.to_filter(), "warn,openraft=error,sled=trace");
    }
}
