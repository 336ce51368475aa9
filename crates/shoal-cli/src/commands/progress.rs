//! Progress of a long operation that `--wait` polls (reassignments, replica moves): one line
//! on stderr per poll, JSON with `-o json`.

use std::time::Instant;

use anyhow::bail;
use serde_json::json;

use crate::output::Output;

/// Reports what is `left` of `of` items (`verb`: "moving", ...) since `started`; true when
/// nothing is left (and says so).
pub fn report(out: &Output, left: &[String], of: usize, started: Instant, done: &str) -> bool {
    let elapsed_s = started.elapsed().as_secs();
    if left.is_empty() {
        out.emit_stderr(
            &json!({"moving": 0, "of": of, "elapsed_s": elapsed_s}),
            &format!("all {of} {done} ({elapsed_s} s)"),
        );
        return true;
    }
    out.emit_stderr(
        &json!({"moving": left.len(), "of": of, "elapsed_s": elapsed_s}),
        &format!(
            "{} of {of} still moving ({elapsed_s} s): {}",
            left.len(),
            left.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        ),
    );
    false
}

/// Fails when `deadline` passed with `left` items of `of` still not `done` (e.g. "moved").
pub fn check_deadline(
    left: &[String],
    of: usize,
    deadline: Instant,
    timeout_ms: u64,
    done: &str,
) -> anyhow::Result<()> {
    if Instant::now() >= deadline {
        bail!(
            "{} of {of} did not {done} within {timeout_ms} ms",
            left.len()
        );
    }
    Ok(())
}
