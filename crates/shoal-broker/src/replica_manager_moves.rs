//! The replica manager's side of moving a replica between log directories: answering
//! AlterReplicaLogDirs, running the copy, and swapping the copy in (see `replica_moves` for
//! the design and the crash rules).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kafka_protocol::ResponseError;
use shoal_log::cleaner_throttle::IoThrottle;
use shoal_replica::Partition;

use super::{PartitionKey, ReplicaManager, read, write};
use crate::log_dirs;
use crate::replica_moves::decide::{MoveDecision, MoveInput, Replica, decide};
use crate::replica_moves::file_sync::{DirCopy, PassKind};
use crate::replica_moves::interrupted::{remove_marker, sync_dir, sync_parent, write_marker};
use crate::replica_moves::{
    FINAL_PASS_TARGET_BYTES, IO_MAX_BYTES_PER_SECOND, MAX_PASSES_WHILE_SERVING, Move, io_rate,
};
use crate::time::wall_ms;

/// How a move ended.
enum Ended {
    Moved,
    /// Stopped before the commit point; the replica stays where it was.
    Abandoned(String),
    /// Failed after the commit point: the complete copy must stay for the next start to
    /// finish the move; the replica is offline here meanwhile.
    Stuck(String),
}

impl ReplicaManager {
    /// One partition of an AlterReplicaLogDirs request: its error code. A move starts in the
    /// background; DescribeLogDirs shows it (a future replica) until it is done.
    pub fn alter_replica_log_dir(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        requested_dir: &str,
    ) -> i16 {
        let requested = std::path::absolute(requested_dir)
            .unwrap_or_else(|_| Path::new(requested_dir).to_path_buf());
        let target = self.log_dirs.dirs().iter().position(|d| {
            std::path::absolute(&d.path).unwrap_or_else(|_| d.path.clone()) == requested
        });
        let failed = self.failed_dirs();
        let image = self.image();
        let key = image.topic_by_name(topic).map(|t| (t.id, partition));
        let hosted = key.and_then(|key| {
            read(&self.hosted)
                .get(&key)
                .map(|h| (h.dir, Arc::clone(&h.partition)))
        });
        let replica = match (key, &hosted) {
            (Some(key), Some((dir, _))) => Replica::Hosted {
                dir: *dir,
                moving_to: self.moves.get(key).map(|m| m.target),
            },
            (Some(key), None) if self.is_offline(key.0, key.1) => Replica::Offline,
            _ => Replica::NotHosted,
        };
        let decision = decide(MoveInput {
            name_fits: log_dirs::future_dir_name_fits(topic, partition),
            target,
            target_failed: target.is_some_and(|t| failed.contains_key(&t)),
            any_dir_failed: !failed.is_empty(),
            replica,
        });
        match decision {
            MoveDecision::Refuse(code) => code,
            MoveDecision::Prefer(dir) => {
                if !self.moves.prefer(topic, partition, dir) {
                    tracing::warn!(
                        topic,
                        partition,
                        "too many remembered log directories for replicas not created yet"
                    );
                }
                ResponseError::ReplicaNotAvailable.code()
            }
            MoveDecision::Nothing => 0,
            MoveDecision::Cancel => {
                if let Some(key) = key {
                    tracing::info!(topic, partition, "replica move cancelled");
                    self.moves.cancel(key);
                }
                0
            }
            MoveDecision::Start { target, .. } => {
                let (Some(key), Some((_, replica)), Some(root)) =
                    (key, hosted, self.log_dirs.get(target))
                else {
                    return ResponseError::ReplicaNotAvailable.code();
                };
                let log_start_offset = replica.read_log(|l| Ok(l.log_start_offset())).unwrap_or(0);
                let new = Arc::new(Move::new(
                    target,
                    log_dirs::future_dir(&root.path, topic, partition),
                    log_start_offset,
                ));
                self.moves.insert(key, Arc::clone(&new));
                tracing::info!(topic, partition, target = %root.path.display(), "replica move requested");
                let manager = Arc::clone(self);
                let permits = Arc::clone(&self.move_permits);
                tokio::spawn(async move {
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    let running = Arc::clone(&manager);
                    let _ =
                        tokio::task::spawn_blocking(move || running.run_move(key, &replica, &new))
                            .await;
                });
                0
            }
        }
    }

    /// The copy throttle now (dynamic: per broker, cluster-wide, else the static setting).
    fn move_io_rate(&self) -> Option<u64> {
        let image = self.image();
        match image
            .broker_configs
            .value(self.local_id, IO_MAX_BYTES_PER_SECOND)
        {
            Some((value, _)) => io_rate(Some(value)),
            None => io_rate(
                self.broker_settings
                    .get(IO_MAX_BYTES_PER_SECOND)
                    .map(String::as_str),
            ),
        }
    }

    /// Runs one move to its end. Blocking.
    fn run_move(&self, key: PartitionKey, replica: &Arc<Partition>, mv: &Arc<Move>) {
        let (topic, index) = (replica.topic().to_string(), replica.index());
        let started = std::time::Instant::now();
        match self.copy_and_swap(key, replica, mv) {
            Ok(Ended::Moved) => tracing::info!(
                topic,
                partition = index,
                dir = %mv.future_dir.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replica moved to another log directory"
            ),
            Ok(Ended::Abandoned(why)) => {
                tracing::info!(topic, partition = index, %why, "replica move stopped");
                remove_copy(&mv.future_dir);
            }
            Ok(Ended::Stuck(why)) => {
                tracing::error!(topic, partition = index, %why, copy = %mv.future_dir.display(), "replica move could not finish after its copy was complete; the replica is offline here until the broker restarts, which finishes the move");
            }
            Err(why) => {
                tracing::warn!(topic, partition = index, %why, "replica move failed");
                remove_copy(&mv.future_dir);
            }
        }
        self.moves.finished(key, mv);
    }

    /// Whether `replica` is still the one hosted for `key`, and in which directory.
    fn hosted_dir(&self, key: PartitionKey, replica: &Arc<Partition>) -> Option<usize> {
        read(&self.hosted)
            .get(&key)
            .filter(|h| Arc::ptr_eq(&h.partition, replica))
            .map(|h| h.dir)
    }

    fn copy_and_swap(
        &self,
        key: PartitionKey,
        replica: &Arc<Partition>,
        mv: &Arc<Move>,
    ) -> Result<Ended, String> {
        let Some(source_position) = self.hosted_dir(key, replica) else {
            return Ok(Ended::Abandoned(
                "the replica is no longer hosted here".into(),
            ));
        };
        let source_root = self
            .log_dirs
            .get(source_position)
            .map(|d| d.path.clone())
            .ok_or("no source log directory")?;
        let source = log_dirs::partition_dir(&source_root, replica.topic(), replica.index());
        if mv.future_dir.exists() {
            remove_copy(&mv.future_dir);
        }
        std::fs::create_dir_all(&mv.future_dir)
            .map_err(|e| format!("cannot create {}: {e}", mv.future_dir.display()))?;
        let mut copy = DirCopy {
            source: &source,
            target: &mv.future_dir,
            copied: Default::default(),
            cancel: &mv.cancel,
            progress: &mv.progress,
        };
        let mut caught_up = false;
        for _ in 0..MAX_PASSES_WHILE_SERVING {
            if mv.is_cancelled() {
                return Ok(Ended::Abandoned("cancelled".into()));
            }
            if self.hosted_dir(key, replica) != Some(source_position) {
                return Ok(Ended::Abandoned(
                    "the replica is no longer hosted here".into(),
                ));
            }
            let active_bytes = replica
                .read_log(|log| Ok(log.active_segment_bytes()))
                .map_err(|e| e.to_string())?;
            if active_bytes > FINAL_PASS_TARGET_BYTES {
                replica.roll_log(wall_ms()).map_err(|e| e.to_string())?;
            }
            let mut throttle = IoThrottle::new(self.move_io_rate());
            let pass = match copy.pass(PassKind::WhileServing, &mut throttle) {
                Ok(pass) => pass,
                Err(e) if mv.is_cancelled() => return Ok(Ended::Abandoned(e.to_string())),
                Err(e) => return Err(format!("copying into {}: {e}", mv.future_dir.display())),
            };
            if let Some(offset) = pass.active_base_offset {
                mv.progress.offset.fetch_max(offset, Ordering::Relaxed);
            }
            let active_now = replica
                .read_log(|log| Ok(log.active_segment_bytes()))
                .map_err(|e| e.to_string())?;
            if active_now <= FINAL_PASS_TARGET_BYTES && pass.bytes_copied <= FINAL_PASS_TARGET_BYTES
            {
                caught_up = true;
                break;
            }
        }
        if !caught_up {
            // The final pass runs with the replica closed: never with a backlog.
            return Err(format!(
                "the copy did not catch up with the log in {MAX_PASSES_WHILE_SERVING} passes \
                 (is {IO_MAX_BYTES_PER_SECOND} below the partition's write rate?)"
            ));
        }
        self.swap(key, replica, mv, copy, &source, source_position)
    }

    /// The final pass with the replica closed, the commit, and the reopened replica.
    fn swap(
        &self,
        key: PartitionKey,
        replica: &Arc<Partition>,
        mv: &Arc<Move>,
        mut copy: DirCopy<'_>,
        source: &Path,
        source_position: usize,
    ) -> Result<Ended, String> {
        // No image is applied meanwhile: the replica cannot change under the swap.
        let _applying = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        if mv.is_cancelled() {
            return Ok(Ended::Abandoned("cancelled".into()));
        }
        if self.hosted_dir(key, replica) != Some(source_position)
            || self.closed.load(Ordering::Acquire)
        {
            return Ok(Ended::Abandoned(
                "the replica is no longer hosted here".into(),
            ));
        }
        if read(&self.failed_dirs).contains_key(&mv.target) {
            return Ok(Ended::Abandoned("the target log directory failed".into()));
        }
        let Some(target_root) = self.log_dirs.get(mv.target).map(|d| d.path.clone()) else {
            return Err("no target log directory".into());
        };
        let destination = log_dirs::partition_dir(&target_root, replica.topic(), key.1);
        if destination.exists() {
            return Err(format!(
                "{} exists already; move it away first",
                destination.display()
            ));
        }
        let paused = std::time::Instant::now();
        // Before the commit point: on any failure the source is reopened where it is.
        if let Err(error) = replica.close() {
            // Its files may not be whole: no copy of them. Reopening recovers the log as
            // after a crash (or finds the directory failing).
            remove_copy(&mv.future_dir);
            self.reopen(key, replica, source, source_position);
            return Err(format!("closing the replica to move it failed: {error}"));
        }
        if self.hosted_dir(key, replica) != Some(source_position) {
            // Shutdown or a failed directory took it out meanwhile, and is closing it: its
            // files may still change. Not copied; it stays where it is.
            return Ok(Ended::Abandoned(
                "the replica was closed by the broker meanwhile".into(),
            ));
        }
        let mut unthrottled = IoThrottle::new(None);
        let committed = copy
            .pass(PassKind::Final, &mut unthrottled)
            .map_err(|e| format!("copying into {}: {e}", mv.future_dir.display()))
            .and_then(|_| sync_dir(&mv.future_dir))
            // The copy's own entry in the target directory, before the source is set aside.
            .and_then(|()| sync_parent(&mv.future_dir))
            .and_then(|()| write_marker(&mv.future_dir));
        if let Err(error) = committed {
            // The marker may have been written: it goes, durably, before the source serves
            // again; else the next start would prefer the copy over newer records.
            if remove_marker(&mv.future_dir).is_err() {
                self.offline_until_restart(key, replica, &mv.future_dir);
                return Ok(Ended::Stuck(error));
            }
            remove_copy(&mv.future_dir);
            self.reopen(key, replica, source, source_position);
            return Err(error);
        }
        // Committed: the copy is the replica. The source is never written again.
        let aside = match log_dirs::rename_for_delete(source, uuid::Uuid::new_v4()) {
            Ok(aside) => aside,
            Err(error) => {
                // The source is still in place: undo the commit, then it may serve again.
                let why = format!("cannot set aside {}: {error}", source.display());
                if remove_marker(&mv.future_dir).is_ok() {
                    remove_copy(&mv.future_dir);
                    self.reopen(key, replica, source, source_position);
                    return Err(why);
                }
                self.offline_until_restart(key, replica, &mv.future_dir);
                return Ok(Ended::Stuck(why));
            }
        };
        if let Err(error) = sync_parent(&aside) {
            tracing::warn!(%error, "fsync after setting the moved replica's source aside failed");
        }
        if let Err(error) = std::fs::rename(&mv.future_dir, &destination)
            .map_err(|e| e.to_string())
            .and_then(|()| sync_parent(&destination))
        {
            self.offline_until_restart(key, replica, &mv.future_dir);
            return Ok(Ended::Stuck(format!(
                "cannot rename {} to {}: {error}",
                mv.future_dir.display(),
                destination.display()
            )));
        }
        if let Err(error) = remove_marker(&destination) {
            // The next start removes it (a marked replica with no copy beside it).
            tracing::warn!(%error, "removing the moved replica's marker failed");
        }
        self.reopen(key, replica, &destination, mv.target);
        tracing::info!(
            topic = replica.topic(),
            partition = key.1,
            paused_ms = paused.elapsed().as_millis() as u64,
            "moved replica reopened"
        );
        if let Err(error) = std::fs::remove_dir_all(&aside) {
            tracing::warn!(dir = %aside.display(), %error, "deleting the moved replica's old copy failed; the next start deletes it");
        }
        Ok(Ended::Moved)
    }

    /// Opens the replica from `dir` (in log directory `position`) in place of the closed
    /// `old`, in the state `old` had; a replica removed meanwhile (shutdown, a failed
    /// directory) is left closed.
    fn reopen(&self, key: PartitionKey, old: &Arc<Partition>, dir: &Path, position: usize) {
        let configs = read(&self.hosted)
            .get(&key)
            .map(|h| h.configs.clone())
            .unwrap_or_default();
        let opened = self.open_log(dir, old.topic(), key.1, &configs, old.state());
        let mut hosted = write(&self.hosted);
        let current = hosted
            .get_mut(&key)
            .filter(|h| Arc::ptr_eq(&h.partition, old));
        // Checked under the lock fail_dir takes replicas out with: a directory failed since
        // the copy must not get the replica back.
        let dir_failed = read(&self.failed_dirs).contains_key(&position);
        match (opened, current) {
            (Ok(partition), Some(entry)) if !self.closed.load(Ordering::Acquire) && !dir_failed => {
                entry.partition = Arc::new(partition);
                entry.dir = position;
            }
            (Ok(partition), Some(_)) if dir_failed => {
                hosted.remove(&key);
                drop(hosted);
                let _ = partition.close();
                write(&self.in_failed_dirs).insert(key, position);
                self.mark_offline(key, old.topic(), "its log directory failed".to_string());
            }
            (Ok(partition), _) => {
                drop(hosted);
                if let Err(error) = partition.close() {
                    tracing::warn!(topic = old.topic(), partition = key.1, %error, "closing a reopened replica no longer hosted failed");
                }
            }
            (Err(error), _) => {
                hosted.remove(&key);
                drop(hosted);
                self.mark_offline(key, old.topic(), error);
            }
        }
    }

    /// A commit that could not be finished: the replica stays offline here, and the next
    /// start finishes the move (the complete copy wins).
    fn offline_until_restart(&self, key: PartitionKey, old: &Arc<Partition>, copy: &Path) {
        let removed = {
            let mut hosted = write(&self.hosted);
            match hosted.get(&key) {
                Some(h) if Arc::ptr_eq(&h.partition, old) => hosted.remove(&key).is_some(),
                _ => false,
            }
        };
        // Never reopened or recreated here until the restart that finishes the move.
        write(&self.stuck_moves).insert(key, copy.to_path_buf());
        if removed {
            self.mark_offline(
                key,
                old.topic(),
                format!(
                    "its move to another log directory could not finish; restart the broker \
                     to complete it from {}",
                    copy.display()
                ),
            );
        }
    }
}

/// Removes a copy that will not be used (best effort: the next start removes it anyway).
fn remove_copy(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "removing an unused replica copy failed")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    use shoal_meta::MetadataImage;
    use shoal_replica::{PartitionError, RequiredAcks};
    use uuid::Uuid;

    use super::*;
    use crate::log_dir_set::LogDirSet;

    const TOPIC_ID: Uuid = Uuid::from_u128(7);

    /// Broker 1 leads t-0 and t-1 (RF 1), with 64 KiB segments so a few MiB make many.
    fn image() -> Arc<MetadataImage> {
        super::super::tests::image_hosting("t", TOPIC_ID, 2, &[("segment.bytes", "65536")])
    }

    fn open(first: &Path, second: &Path, settings: &[(&str, &str)]) -> Arc<ReplicaManager> {
        std::fs::create_dir_all(first).unwrap();
        let dirs = LogDirSet::open(
            first,
            Uuid::from_u128(1),
            &[second.to_path_buf()],
            "c",
            1,
            0,
        )
        .unwrap();
        let settings: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let image = image();
        let manager = Arc::new(ReplicaManager::new(
            1,
            Arc::new(dirs),
            settings,
            image.clone(),
        ));
        manager.apply_image(image);
        manager
    }

    fn dir_of(manager: &ReplicaManager, partition: i32) -> Option<usize> {
        manager
            .partitions_by_dir()
            .into_iter()
            .find(|(_, p)| p.index() == partition)
            .map(|(dir, _)| dir)
    }

    /// Every (offset, value) in the partition's log.
    fn read_all(manager: &ReplicaManager, partition: i32) -> BTreeMap<i64, Vec<u8>> {
        let p = manager.partition(TOPIC_ID, partition).unwrap();
        let end = p.read_log(|l| Ok(l.log_end_offset())).unwrap();
        let mut found = BTreeMap::new();
        let mut offset = 0;
        while offset < end {
            let read = p.read_records(offset, 1 << 20, end, true).unwrap();
            assert!(!read.records.is_empty(), "nothing at {offset} below {end}");
            for batch in shoal_log::batch::batches(&read.records) {
                let batch = batch.unwrap();
                for record in shoal_log::testing::decode_records(batch.bytes).unwrap() {
                    found.insert(record.offset, record.value.unwrap_or_default());
                    offset = offset.max(record.offset + 1);
                }
            }
        }
        found
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn path_str(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_moves_to_another_directory_while_appends_go_on() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        let manager = open(&first, &second, &[]);
        // t-0 and t-1 are placed one in each directory; t-0 moves to t-1's.
        let (from, to, to_position) = match dir_of(&manager, 0) {
            Some(0) => (first.clone(), second.clone(), 1),
            _ => (second.clone(), first.clone(), 0),
        };
        let stop = Arc::new(AtomicBool::new(false));
        // A writer that goes on through the swap: a closed replica is looked up again.
        let writer = {
            let (manager, stop) = (Arc::clone(&manager), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut written: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
                let mut refused = 0;
                for i in 0..20_000 {
                    if stop.load(Ordering::Acquire) && i % 10 == 0 {
                        break;
                    }
                    let values: Vec<Vec<u8>> = (0..10)
                        .map(|j| format!("{i}-{j}-{}", "x".repeat(90)).into_bytes())
                        .collect();
                    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                    let batch = shoal_log::testing::build_batch(0, 0, &refs);
                    let partition = manager.partition(TOPIC_ID, 0).unwrap();
                    match partition.append_as_leader(&batch, RequiredAcks::Leader, 0) {
                        Ok(appended) => {
                            for (j, value) in values.into_iter().enumerate() {
                                written.insert(appended.info.first_offset + j as i64, value);
                            }
                        }
                        Err(PartitionError::Closed | PartitionError::NotLeaderOrFollower) => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
                (written, refused)
            })
        };
        wait_until("a few MiB are written", || {
            manager
                .partition(TOPIC_ID, 0)
                .and_then(|p| p.read_log(|l| Ok(l.size_bytes())).ok())
                .is_some_and(|size| size > 3 << 20)
        });
        assert_eq!(manager.alter_replica_log_dir("t", 0, path_str(&to)), 0);
        assert_eq!(
            manager.moves.get((TOPIC_ID, 0)).map(|m| m.target),
            Some(to_position)
        );
        // Asked again while moving: nothing new.
        assert_eq!(manager.alter_replica_log_dir("t", 0, path_str(&to)), 0);
        let waiting = Arc::clone(&manager);
        tokio::task::spawn_blocking(move || {
            wait_until("the move is done", || {
                waiting.moves.get((TOPIC_ID, 0)).is_none()
            })
        })
        .await
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Release);
        let (written, refused) = writer.join().unwrap();
        assert_eq!(dir_of(&manager, 0), Some(to_position));
        assert!(!from.join("t-0").exists());
        assert!(to.join("t-0").is_dir());
        assert!(refused < 1_000, "appends refused {refused} times");
        // Every record written before, during and after the move, at its offset, and nothing
        // else.
        assert_eq!(read_all(&manager, 0), written);
        // Nothing left behind in either directory.
        for dir in [&first, &second] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().to_string();
                assert!(
                    !name.contains("-future") && !name.contains("-delete"),
                    "{name}"
                );
            }
        }
        manager.close_all();
        // After a restart it is opened where it now is.
        let again = open(&first, &second, &[]);
        assert_eq!(dir_of(&again, 0), Some(to_position));
        assert_eq!(read_all(&again, 0), written);
        again.close_all();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kafkas_answers_and_a_cancelled_move_leaves_the_replica_where_it_was() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        // Slow copies: 64 KiB/s.
        let manager = open(&first, &second, &[(IO_MAX_BYTES_PER_SECOND, "65536")]);
        let partition = manager.partition(TOPIC_ID, 0).unwrap();
        let (here, there) = match dir_of(&manager, 0) {
            Some(0) => (first.clone(), second.clone()),
            _ => (second.clone(), first.clone()),
        };
        let here_position = dir_of(&manager, 0);
        let value = vec![b'v'; 1000];
        for _ in 0..1_000 {
            let batch = shoal_log::testing::build_batch(0, 0, &[&value]);
            partition
                .append_as_leader(&batch, RequiredAcks::Leader, 0)
                .unwrap();
        }
        let code = |topic: &str, p: i32, dir: &str| manager.alter_replica_log_dir(topic, p, dir);
        let not_a_dir = root.path().join("elsewhere");
        assert_eq!(
            code("t", 0, path_str(&not_a_dir)),
            ResponseError::LogDirNotFound.code()
        );
        assert_eq!(code("t", 0, path_str(&here)), 0, "already there");
        assert!(manager.moves.get((TOPIC_ID, 0)).is_none());
        assert_eq!(code("t", 0, path_str(&there)), 0);
        let future = manager.moves.get((TOPIC_ID, 0)).unwrap().future_dir.clone();
        wait_until("the copy has begun", || future.is_dir());
        // Back to where it is: the move stops, the copy goes, the replica stays.
        assert_eq!(code("t", 0, path_str(&here)), 0);
        wait_until("the copy is removed", || !future.exists());
        assert!(manager.moves.get((TOPIC_ID, 0)).is_none());
        assert_eq!(dir_of(&manager, 0), here_position);
        assert!(Arc::ptr_eq(
            &manager.partition(TOPIC_ID, 0).unwrap(),
            &partition
        ));
        // A replica not here yet: REPLICA_NOT_AVAILABLE, and it is created where asked.
        assert_eq!(
            code("u", 3, path_str(&second)),
            ResponseError::ReplicaNotAvailable.code()
        );
        assert_eq!(manager.moves.take_preferred("u", 3), Some(1));
        // Refused: a topic name too long for the copy's directory name.
        assert_eq!(
            code(&"a".repeat(249), 0, path_str(&second)),
            ResponseError::InvalidTopicException.code()
        );
        // Shutting down stops a copy in progress (the runtime waits for blocking work).
        assert_eq!(code("t", 0, path_str(&there)), 0);
        let future = manager.moves.get((TOPIC_ID, 0)).unwrap().future_dir.clone();
        wait_until("the copy has begun", || future.is_dir());
        manager.close_all();
        wait_until("the copy stops", || {
            manager.moves.get((TOPIC_ID, 0)).is_none()
        });
        assert!(!future.exists());
        assert!(here.join("t-0").is_dir());
    }

    #[test]
    fn a_move_stuck_after_its_commit_is_never_reopened_or_recreated_before_a_restart() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        let manager = open(&first, &second, &[]);
        let partition = manager.partition(TOPIC_ID, 0).unwrap();
        partition.close().unwrap();
        manager.offline_until_restart((TOPIC_ID, 0), &partition, Path::new("/b/t-0.f-future"));
        assert!(manager.partition(TOPIC_ID, 0).is_none());
        // The next image neither reopens the source nor creates an empty replica.
        manager.apply_image(image());
        assert!(manager.partition(TOPIC_ID, 0).is_none());
        let offline = manager.offline_partitions();
        assert!(
            offline
                .iter()
                .any(|((_, p), why)| *p == 0 && why.contains("restart the broker")),
            "{offline:?}"
        );
        assert!(manager.partition(TOPIC_ID, 1).is_some());
        manager.close_all();
    }

    #[test]
    fn a_replica_is_created_in_the_directory_named_before_it_existed() {
        let root = tempfile::tempdir().unwrap();
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(&first).unwrap();
        let dirs = LogDirSet::open(
            &first,
            Uuid::from_u128(1),
            std::slice::from_ref(&second),
            "c",
            1,
            0,
        )
        .unwrap();
        let manager = ReplicaManager::new(1, Arc::new(dirs), BTreeMap::new(), image());
        // Both would go to the first directory by count (t-0 there, then t-1 to the second):
        // the preferred directory puts t-0 in the second.
        assert!(manager.moves.prefer("t", 0, 1));
        manager.apply_image(image());
        assert_eq!(dir_of(&manager, 0), Some(1));
        assert_eq!(manager.moves.take_preferred("t", 0), None);
        manager.close_all();
    }
}
