//! Structured logs to stderr: human-readable by default, JSON with `SHOAL_LOG_FORMAT=json`.
//! The filter comes from `SHOAL_LOG` (tracing's env-filter syntax). The default keeps openraft's
//! per-election chatter at warn: operators need Shoal's events, not the library's internals.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,openraft=warn,sled=warn";

pub fn init() {
    let filter =
        EnvFilter::try_from_env("SHOAL_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("SHOAL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
