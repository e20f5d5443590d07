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

use anyhow::Context;
use bytes::{Buf, Bytes};
use flate2::Compression;
use flate2::write::GzEncoder;
use protocol::archive::{self as task_archive, ReadError};
use protocol::{ErrorInfo, ErrorType, TaskStatus, layout};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::AppState;
use crate::db::runs;
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

/// Builds the run's archive in the background if the run is finished (no task pending or
/// claimed) and nobody builds it yet; called after every change that may finish a run.
pub fn spawn_build_if_finished(state: &AppState, run_id: RunId) {
    let state_for_job = state.clone();
    state.jobs.spawn(async move {
        if let Err(err) = build_if_finished(&state_for_job, run_id).await {
            tracing::error!(run_id = %run_id, error = format!("{err:#}"), "building the run archive failed; the next check tries again");
        }
    });
}

/// Claims the build of the run's archive with a compare-and-set, builds it, uploads it and
/// marks the run complete. Returns `Ok(None)` when the run is not finished, already complete,
/// or being built by someone else. On failure the run is left running with `archive_state`
/// `failed`, and the periodic check tries again.
pub async fn build_if_finished(
    state: &AppState,
    run_id: RunId,
) -> anyhow::Result<Option<ArchiveReport>> {
    if !runs::update_run_archive_building(&state.db, run_id).await? {
        return Ok(None);
    }
    tracing::info!(run_id = %run_id, "building the run archive");
    let key = layout::run_archive_key(run_id.0);
    match build_archive(&state.db, &state.storage, run_id, &key).await {
        Ok(report) => {
            runs::update_run_complete(&state.db, run_id, &key).await?;
            tracing::info!(run_id = %run_id, key, ?report, "run complete: archive uploaded");
            Ok(Some(report))
        }
        Err(err) => {
            runs::update_run_archive_failed(&state.db, run_id, &format!("{err:#}")).await?;
            Err(err)
        }
    }
}

/// At start: takes back a build that a previous process left in `building` (it was killed
/// mid-build), then builds the running run's archive if it is finished. The multipart upload
/// the dead process left behind is never completed; S3 drops it with the bucket's lifecycle.
pub async fn resume_archive_builds(state: &AppState) -> anyhow::Result<Option<ArchiveReport>> {
    for run_id in runs::update_runs_archive_retaken(&state.db).await? {
        tracing::warn!(run_id = %run_id, "a previous process stopped while building the run archive; building it again");
    }
    match runs::get_running_run(&state.db).await? {
        Some(run) => build_if_finished(state, run.id).await,
        None => Ok(None),
    }
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
