//! Disk work off the async worker threads.
//!
//! Log appends and reads block in `write`/`pread` (and sometimes `fsync`); on a tokio worker
//! that would stall every connection and replication stream scheduled on it, so Produce, Fetch
//! and the leader's side of replication run their log calls on tokio's blocking pool.

/// Runs `f` on the blocking pool and waits for it. A panic in `f` resumes here, as if `f` had
/// run inline; `None` only when the runtime is shutting down and cancelled it.
pub(crate) async fn run_blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => Some(result),
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn runs_off_the_async_thread_and_returns_the_result() {
        let caller = std::thread::current().id();
        let ran_on = run_blocking(|| std::thread::current().id()).await;
        assert!(ran_on.is_some_and(|id| id != caller));
    }

    #[tokio::test(flavor = "current_thread")]
    #[should_panic(expected = "disk on fire")]
    async fn a_panic_resumes_in_the_caller() {
        run_blocking(|| panic!("disk on fire")).await;
    }
}
