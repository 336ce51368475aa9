//! Structured logs to stderr: human-readable by default, JSON with `SHOAL_LOG_FORMAT=json`.
//! The filter comes from `SHOAL_LOG` (tracing's env-filter syntax). The default keeps openraft's
//! per-election chatter at warn: operators need Shoal's events, not the library's internals.
//! The filter can be swapped while running: BROKER_LOGGER configs (`shoal_broker::broker_loggers`)
//! change log levels without a restart, as Kafka's broker-loggers do.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,openraft=warn,sled=warn";

pub fn init() {
    let initial = std::env::var("SHOAL_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| DEFAULT_FILTER.to_string());
    let filter = EnvFilter::try_new(&initial).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("SHOAL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let new_filter = |filter: &str| EnvFilter::try_new(filter).map_err(|e| e.to_string());
    // A second init (tests) keeps the first subscriber, and its reload handle.
    if json {
        let builder = builder.json().with_filter_reloading();
        let handle = builder.reload_handle();
        if builder.try_init().is_ok() {
            shoal_broker::broker_loggers::install(
                &initial,
                Box::new(move |f| handle.reload(new_filter(f)?).map_err(|e| e.to_string())),
            );
        }
    } else {
        let builder = builder.with_filter_reloading();
        let handle = builder.reload_handle();
        if builder.try_init().is_ok() {
            shoal_broker::broker_loggers::install(
                &initial,
                Box::new(move |f| handle.reload(new_filter(f)?).map_err(|e| e.to_string())),
            );
        }
    }
}
