//! The archive builder: `results.tar.gz` of a finished run, streamed from the task uploads in
//! S3 to a multipart upload, with memory that grows with neither the number nor the size of
//! the results.
//!
//! Three parts run at once, joined by bounded channels:
//!
//! 1. the fetcher (async) pages through the run's finished tasks and, a few tasks ahead, opens
//!    each task's archive in S3 and passes its body on in the chunks the HTTP client reads;
//! 2. the encoder (one blocking thread) reads each body through a gzip decoder and a tar
//!    reader and writes its files under `<instance_type>-<run>/` into a tar builder, a gzip
//!    encoder and fixed-size parts of [`PART_SIZE`];
//! 3. the uploader (async) sends each part as a part of a multipart upload, completed only when
//!    the encoder and the fetcher both finished without error (else the upload is aborted).
//!
//! What is in memory at once: a few source chunks per open task archive, the tar and gzip
//! buffers, and at most three parts (one being filled, one queued, one being uploaded).
//!
//! Task archives are read by [`protocol::archive`], which keeps only what the flatness rule
//! allows. A task's archive that is missing or cannot be read does not stop the build: the
//! task's folder gets an `error.json` saying so ([`ErrorType::ArchiveMissing`] or
//! [`ErrorType::ArchiveUnreadable`]) and the build goes on.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::{Buf, Bytes};
use flate2::Compression;
use flate2::write::GzEncoder;
use protocol::archive::{self as task_archive, ReadError};
use protocol::{ArchiveState, ErrorInfo, ErrorType, TaskStatus, layout};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::AppState;
use crate::db::runs::{self, RunModel};
use crate::db::tasks::{self, ArchiveTaskModel};
use crate::db::{RunId, TaskId};
use crate::s3::{MultipartUpload, Storage};

/// The size of each part of the multipart upload (S3 wants at least 5 MiB for all but the
/// last). Up to three parts are in memory at once.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How many finished tasks the fetcher reads from the database at a time.
const TASKS_PER_PAGE: i64 = 256;

/// How many task archives are opened ahead of the one being encoded: their requests overlap
/// with the encoding instead of waiting for it.
const SOURCES_AHEAD: usize = 2;

/// How many body chunks of one task archive may wait for the encoder.
const CHUNKS_AHEAD: usize = 8;

/// What a build put into the archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Task folders written.
    pub tasks: u64,
    /// Files copied from task archives.
    pub files: u64,
    /// Tasks whose archive was missing or unreadable.
    pub unreadable: u64,
    /// Size of `results.tar.gz`.
    pub bytes: u64,
}

/// How long after a failed build the next may start: the first retry waits this long, each
/// later one twice as long as the one before, up to [`ARCHIVE_RETRY_MAX`].
pub const ARCHIVE_RETRY_FIRST: Duration = Duration::from_secs(10);

/// The longest wait between two builds of one archive.
pub const ARCHIVE_RETRY_MAX: Duration = Duration::from_secs(600);

/// How often marking the run complete is tried once its archive is uploaded (a second apart,
/// then two, four...): the upload is done, and a database blip should not undo it.
const MARK_COMPLETE_ATTEMPTS: u32 = 5;

/// The runs whose archive this process is building. A build enters before it claims the
/// build in the database and leaves after it recorded the outcome, so a run the database says
/// is `building` and that is not in here has no build running: one that stopped without
/// recording its end (the process was killed, the database went away at the end), taken up
/// again by [`retake_orphaned_build`].
#[derive(Debug, Clone, Default)]
pub struct ArchiveBuilds(Arc<Mutex<HashSet<RunId>>>);

impl ArchiveBuilds {
    /// Enters a build of `run_id`; `None` when one is in already.
    fn enter(&self, run_id: RunId) -> Option<BuildGuard> {
        let mut runs = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        runs.insert(run_id).then(|| BuildGuard {
            builds: self.clone(),
            run_id,
        })
    }
}

/// A build of one run in this process; leaves [`ArchiveBuilds`] when dropped.
struct BuildGuard {
    builds: ArchiveBuilds,
    run_id: RunId,
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        let mut runs = self
            .builds
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        runs.remove(&self.run_id);
    }
}

/// Builds the run's archive in the background if the run is finished (no task pending or
/// claimed) and nobody builds it yet; called after every change that may finish a run.
pub fn spawn_build_if_finished(state: &AppState, run_id: RunId) {
    let state_for_job = state.clone();
    state.jobs.spawn(async move {
        if let Err(err) = build_if_finished(&state_for_job, run_id).await {
            tracing::error!(run_id = %run_id, error = format!("{err:#}"), "building the run archive failed; it is tried again after a backoff");
        }
    });
}

/// Claims the build of the run's archive with a compare-and-set, takes the results that
/// reached S3 for tasks the orchestrator failed ([`recover_late_results`]), builds the
/// archive, uploads it and marks the run complete. Returns `Ok(None)` when the run is not
/// finished, already complete, waiting out the backoff of a failed build, or being built by
/// someone else. On failure the run is left running with `archive_state` `failed` and a
/// time for the next attempt, which the periodic check starts.
pub async fn build_if_finished(
    state: &AppState,
    run_id: RunId,
) -> anyhow::Result<Option<ArchiveReport>> {
    let Some(_guard) = state.archive_builds.enter(run_id) else {
        return Ok(None);
    };
    if !runs::update_run_archive_building(&state.db, run_id).await? {
        return Ok(None);
    }
    tracing::info!(run_id = %run_id, "building the run archive");
    let key = layout::run_archive_key(run_id.0);
    let built = async {
        recover_late_results(&state.db, &state.storage, run_id).await?;
        build_archive(&state.db, &state.storage, run_id, &key).await
    }
    .await;
    match built {
        Ok(report) => {
            mark_complete(&state.db, run_id, &key).await?;
            tracing::info!(run_id = %run_id, key, ?report, "run complete: archive uploaded");
            Ok(Some(report))
        }
        Err(err) => {
            runs::update_run_archive_failed(
                &state.db,
                run_id,
                &format!("{err:#}"),
                ARCHIVE_RETRY_FIRST,
                ARCHIVE_RETRY_MAX,
            )
            .await?;
            Err(err)
        }
    }
}

/// Marks the run complete with its uploaded archive, retrying a database that does not
/// answer. Should every attempt fail, the run stays `building` with no build in this process,
/// and the periodic check builds it again.
async fn mark_complete(db: &PgPool, run_id: RunId, key: &str) -> anyhow::Result<()> {
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=MARK_COMPLETE_ATTEMPTS {
        match runs::update_run_complete(db, run_id, key).await {
            Ok(_) => return Ok(()),
            Err(err) if attempt == MARK_COMPLETE_ATTEMPTS => {
                return Err(anyhow::Error::new(err)
                    .context("the archive is uploaded but the run could not be marked complete"));
            }
            Err(err) => {
                tracing::warn!(run_id = %run_id, error = %err, "marking the run complete failed; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Takes up a build of the run that stopped without recording its end: the database says
/// `building` but no build of it runs in this process (a process killed mid-build, or a
/// build whose last write could not reach the database). The run is set `failed` with the
/// next attempt due now. Returns whether it was.
pub async fn retake_orphaned_build(state: &AppState, run: &RunModel) -> anyhow::Result<bool> {
    if run.archive_state != ArchiveState::Building {
        return Ok(false);
    }
    // Entered, no build of this process can start until the state is changed.
    let Some(_guard) = state.archive_builds.enter(run.id) else {
        return Ok(false);
    };
    let retaken = runs::update_run_archive_orphaned(
        &state.db,
        run.id,
        "an earlier build stopped before recording its end (the orchestrator restarted, or \
         its database went away); building it again",
    )
    .await?;
    if retaken {
        tracing::warn!(run_id = %run.id, "an earlier build of the run archive stopped before its end; building it again");
    }
    Ok(retaken)
}

/// Results that reached S3 although the orchestrator failed their task (no heartbeat through
/// a network cut, or `/complete` lost after the upload; an early stop just after the upload):
/// such a task is marked completed with its result, so that the archive has it. Returns how
/// many there were.
pub async fn recover_late_results(
    db: &PgPool,
    storage: &Storage,
    run_id: RunId,
) -> anyhow::Result<u64> {
    let mut recovered = 0;
    for task in tasks::get_tasks_failed_by_orchestrator(db, run_id).await? {
        let key = layout::task_result_key(run_id.0, task.id.0);
        if storage.object_exists(&key).await?
            && tasks::update_task_completed_late(db, task, &key).await?
        {
            tracing::warn!(task_id = %task.id, key, "the task's result reached S3 after it was failed: it is completed after all");
            recovered += 1;
        }
    }
    Ok(recovered)
}

/// Streams every finished task of the run into `results.tar.gz` at `key`.
pub async fn build_archive(
    db: &PgPool,
    storage: &Storage,
    run_id: RunId,
    key: &str,
) -> anyhow::Result<ArchiveReport> {
    let mut upload = storage
        .start_multipart_upload(key, "application/gzip")
        .await?;

    let (source_tx, source_rx) = mpsc::channel(SOURCES_AHEAD);
    let (part_tx, part_rx) = mpsc::channel(1);
    let encoder = tokio::task::spawn_blocking(move || encode(source_rx, PartWriter::new(part_tx)));
    let (fetched, uploaded) = tokio::join!(
        fetch_sources(db, storage, run_id, source_tx),
        upload_parts(storage, &mut upload, part_rx),
    );
    let encoded = encoder
        .await
        .context("the archive encoder panicked")
        .and_then(|result| result.context("failed to write the archive"));

    let outcome = fetched
        .and(encoded)
        .and_then(|report| uploaded.map(|()| report));
    match outcome {
        Ok(report) => {
            storage.complete_multipart_upload(upload).await?;
            Ok(report)
        }
        Err(err) => {
            if let Err(abort_err) = storage.abort_multipart_upload(upload).await {
                tracing::warn!(
                    key,
                    error = format!("{abort_err:#}"),
                    "failed to abort the multipart upload"
                );
            }
            Err(err)
        }
    }
}

/// One task's archive on its way from S3 to the encoder.
struct Source {
    task: ArchiveTaskModel,
    body: mpsc::Receiver<Chunk>,
}

/// What the fetcher passes on of a task's archive.
enum Chunk {
    /// The next bytes of the body.
    Data(Bytes),
    /// There is no object at the key.
    Missing,
    /// The request or the body failed.
    Failed(String),
}

/// Pages through the run's finished tasks and opens their archives, a few ahead of the encoder.
async fn fetch_sources(
    db: &PgPool,
    storage: &Storage,
    run_id: RunId,
    sources: mpsc::Sender<Source>,
) -> anyhow::Result<()> {
    let mut after = TaskId(0);
    loop {
        let page = tasks::get_finished_tasks_page(db, run_id, after, TASKS_PER_PAGE)
            .await
            .context("failed to read the run's tasks")?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        for task in page {
            let key = match task.state {
                TaskStatus::Completed => layout::task_result_key(run_id.0, task.id.0),
                _ => layout::task_error_key(run_id.0, task.id.0),
            };
            let (chunk_tx, chunk_rx) = mpsc::channel(CHUNKS_AHEAD);
            tokio::spawn(pump_object(storage.clone(), key, chunk_tx));
            let source = Source {
                task,
                body: chunk_rx,
            };
            if sources.send(source).await.is_err() {
                // The encoder stopped; it reports why.
                return Ok(());
            }
        }
    }
}

/// Reads one object into `chunks` until the body ends or the encoder stops listening.
async fn pump_object(storage: Storage, key: String, chunks: mpsc::Sender<Chunk>) {
    let mut body = match storage.open_object(&key).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            chunks.send(Chunk::Missing).await.ok();
            return;
        }
        Err(err) => {
            chunks.send(Chunk::Failed(format!("{err:#}"))).await.ok();
            return;
        }
    };
    loop {
        match body.next_chunk().await {
            Ok(Some(bytes)) => {
                if chunks.send(Chunk::Data(bytes)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(err) => {
                let message = format!("reading {key} from S3 failed midway: {err}");
                chunks.send(Chunk::Failed(message)).await.ok();
                return;
            }
        }
    }
}

/// Sends the encoder's parts as the parts of the multipart upload, in order.
async fn upload_parts(
    storage: &Storage,
    upload: &mut MultipartUpload,
    mut parts: mpsc::Receiver<Bytes>,
) -> anyhow::Result<()> {
    while let Some(part) = parts.recv().await {
        storage.upload_part(upload, part).await?;
    }
    Ok(())
}

/// The encoder: every source into one gzipped tar, cut into parts. Only a failure to write the
/// output is an error; unreadable sources are recorded in their folders.
fn encode(mut sources: mpsc::Receiver<Source>, parts: PartWriter) -> io::Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    let mut builder = tar::Builder::new(GzEncoder::new(parts, Compression::default()));
    while let Some(source) = sources.blocking_recv() {
        write_task(&mut builder, source, &mut report)?;
    }
    let parts = builder.into_inner()?.finish()?;
    report.bytes = parts.finish()?;
    Ok(report)
}

/// Writes one task's folder.
fn write_task<W: Write>(
    builder: &mut tar::Builder<W>,
    source: Source,
    report: &mut ArchiveReport,
) -> io::Result<()> {
    let Source { task, mut body } = source;
    let folder = layout::task_folder(&task.instance_type, u32::try_from(task.run).unwrap_or(0));
    let mtime = task
        .finished_at
        .map_or(0, |at| u64::try_from(at.unix_timestamp()).unwrap_or(0));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    header.set_mtime(mtime);
    builder.append_data(&mut header, &folder, io::empty())?;
    report.tasks += 1;

    let completed = task.state == TaskStatus::Completed;
    let archive_name = if completed {
        layout::RESULT_ARCHIVE
    } else {
        layout::ERROR_ARCHIVE
    };
    let mut written = HashSet::new();
    let problem = match body.blocking_recv() {
        Some(Chunk::Data(first)) => {
            let reader = ChunkReader {
                current: first,
                chunks: body,
            };
            copy_files(builder, &folder, reader, &mut written, report)?.err()
        }
        // A failed task need not have uploaded an error archive.
        Some(Chunk::Missing) if !completed => None,
        Some(Chunk::Missing) => Some((
            ErrorType::ArchiveMissing,
            format!("the task completed but its {archive_name} is not in S3"),
        )),
        Some(Chunk::Failed(message)) => Some((ErrorType::ArchiveUnreadable, message)),
        None => Some((
            ErrorType::ArchiveUnreadable,
            format!("the task's {archive_name} is empty"),
        )),
    };
    if problem.is_some() {
        report.unreadable += 1;
        tracing::warn!(task_id = %task.id, folder, problem = ?problem, "a task archive is missing or unreadable");
    }

    // Every failed task has an error.json: the runner's, else one from what it sent to /fail.
    let mut problem = problem;
    if !completed && !written.contains(layout::ERROR_JSON) {
        let mut error_message = task.error_message.clone().unwrap_or_default();
        if let Some((_, message)) = problem.take() {
            error_message.push_str(&format!(
                " (the orchestrator could not read the runner's {archive_name}: {message})"
            ));
        }
        let info = ErrorInfo {
            error_type: task
                .error_type
                .clone()
                .unwrap_or_else(|| ErrorType::Unknown.to_string()),
            error_message,
            exit_code: None,
        };
        append_json(builder, &folder, layout::ERROR_JSON, &info, mtime)?;
    }
    if let Some((error_type, message)) = problem {
        let name = if written.contains(layout::ERROR_JSON) {
            layout::ARCHIVE_ERROR_JSON
        } else {
            layout::ERROR_JSON
        };
        let info = ErrorInfo {
            error_type: error_type.to_string(),
            error_message: format!("task {}: {message}", task.id),
            exit_code: None,
        };
        append_json(builder, &folder, name, &info, mtime)?;
    }
    Ok(())
}

/// Copies the files of one task archive into `folder`. The outer error is a failure to write
/// the output; the inner one says why the source could not be read (files copied before that
/// stay, whole).
fn copy_files<W: Write>(
    builder: &mut tar::Builder<W>,
    folder: &str,
    reader: ChunkReader,
    written: &mut HashSet<String>,
    report: &mut ArchiveReport,
) -> io::Result<Result<(), (ErrorType, String)>> {
    let copied = task_archive::read_files(reader, |file| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(file.size);
        header.set_mtime(file.mtime);
        builder.append_data(&mut header, format!("{folder}/{}", file.name), file.content)?;
        written.insert(file.name.to_owned());
        report.files += 1;
        Ok(())
    });
    match copied {
        Ok(()) => Ok(Ok(())),
        Err(ReadError::Consumer(err)) => Err(err),
        Err(err) => Ok(Err((ErrorType::ArchiveUnreadable, err.to_string()))),
    }
}

fn append_json<W: Write>(
    builder: &mut tar::Builder<W>,
    folder: &str,
    name: &str,
    value: &impl serde::Serialize,
    mtime: u64,
) -> io::Result<()> {
    let mut json = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    json.push(b'\n');
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(json.len() as u64);
    header.set_mtime(mtime);
    builder.append_data(&mut header, format!("{folder}/{name}"), json.as_slice())
}

/// Reads a task archive's body from the fetcher's chunks, on the encoder's thread.
struct ChunkReader {
    current: Bytes,
    chunks: mpsc::Receiver<Chunk>,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = out.len().min(self.current.len());
                out[..n].copy_from_slice(&self.current[..n]);
                self.current.advance(n);
                return Ok(n);
            }
            match self.chunks.blocking_recv() {
                Some(Chunk::Data(bytes)) => self.current = bytes,
                Some(Chunk::Failed(message)) => return Err(io::Error::other(message)),
                Some(Chunk::Missing) => return Err(io::Error::other("the object disappeared")),
                None => return Ok(0),
            }
        }
    }
}

/// Cuts the gzip stream into parts of [`PART_SIZE`] for the uploader.
struct PartWriter {
    buffer: Vec<u8>,
    parts: mpsc::Sender<Bytes>,
    written: u64,
}

impl PartWriter {
    fn new(parts: mpsc::Sender<Bytes>) -> Self {
        Self {
            buffer: Vec::new(),
            parts,
            written: 0,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let part = std::mem::take(&mut self.buffer);
        self.written += part.len() as u64;
        self.parts
            .blocking_send(Bytes::from(part))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the uploader stopped"))
    }

    /// Sends the last part; returns the size of the whole stream.
    fn finish(mut self) -> io::Result<u64> {
        if !self.buffer.is_empty() || self.written == 0 {
            self.send()?;
        }
        Ok(self.written)
    }
}

impl Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(PART_SIZE);
        }
        let n = data.len().min(PART_SIZE - self.buffer.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == PART_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
