//! What the dashboard shows, read from the database and formatted for the templates: a run's
//! state, task counts, breakdown by provider and instance type, task list and past runs.

use std::collections::BTreeMap;

use protocol::{ArchiveState, RunState, TaskCounts, TaskStatus};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use crate::AppState;
use crate::db::run_history;
use crate::db::runs::{self, RunModel, RunTaskCounts};
use crate::db::tasks::{self, TaskModel};

/// How many runs before the latest one the dashboard lists.
pub const PAST_RUNS_SHOWN: usize = 20;

/// How many tasks the task list shows at most; counts and breakdown cover every task.
pub const TASKS_SHOWN: usize = 1000;

/// The whole dashboard.
#[derive(Debug, Clone)]
pub struct DashboardView {
    /// The latest run; `None` when no run was ever started (idle).
    pub current: Option<RunView>,
    /// The runs before it, newest first.
    pub past_runs: Vec<PastRunView>,
}

/// One run with its tasks.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run id.
    pub id: i64,
    /// `running`, `stopping` (ended early, archive not uploaded yet), `complete` or `stopped`
    /// (complete after an early end); also the CSS class of the status badge.
    pub status: &'static str,
    /// The status in words.
    pub status_text: &'static str,
    /// Whether "End run early" applies.
    pub can_stop: bool,
    /// The Ruby version benchmarked.
    pub ruby_version: String,
    /// When the run started.
    pub created_at: TimeView,
    /// When it was ended early.
    pub stopped_at: Option<TimeView>,
    /// When its archive was uploaded.
    pub completed_at: Option<TimeView>,
    /// The archive builder's progress in words.
    pub archive_text: String,
    /// Why the last build failed, while the archive is not uploaded.
    pub archive_error: Option<String>,
    /// The presigned download URL of `results.tar.gz`, signed afresh for this page.
    pub gzip_url: Option<String>,
    /// Task counts by status.
    pub counts: TaskCounts,
    /// Task counts by provider and instance type.
    pub breakdown: Vec<BreakdownRow>,
    /// The runner hosts seen per provider and instance type, and the types none was seen for.
    pub runners: Vec<RunnerRow>,
    /// The tasks, by id, at most [`TASKS_SHOWN`].
    pub tasks: Vec<TaskRow>,
    /// How many tasks the list leaves out.
    pub tasks_hidden: usize,
}

/// The tasks of one provider and instance type.
#[derive(Debug, Clone)]
pub struct BreakdownRow {
    /// `aws`, `azure` or `local`.
    pub provider: String,
    /// The instance type.
    pub instance_type: String,
    /// Its counts.
    pub counts: TaskCounts,
}

/// A runner host of the run (its slots' ids are `<host>-<slot>`), or a type without any.
#[derive(Debug, Clone)]
pub struct RunnerRow {
    /// `aws`, `azure` or `local`.
    pub provider: String,
    /// The instance type.
    pub instance_type: String,
    /// The host's runner id; `None` for a type no runner held a task of yet.
    pub host: Option<String>,
    /// Its slots that held a task.
    pub slots: usize,
    /// Those holding one now.
    pub busy: usize,
    /// Its last claim, heartbeat or report.
    pub last_seen: Option<TimeView>,
}

/// One task of the task list.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// The task id.
    pub id: i64,
    /// Its provider.
    pub provider: String,
    /// Its instance type.
    pub instance_type: String,
    /// Which run of its instance type it is.
    pub run: i32,
    /// pending, claimed, completed or failed.
    pub status: &'static str,
    /// The phase of the last heartbeat.
    pub phase: Option<String>,
    /// The benchmark running at the last heartbeat.
    pub current_benchmark: Option<String>,
    /// Progress at the last heartbeat, 0 to 100.
    pub progress_pct: Option<i16>,
    /// The last heartbeat (or the claim), with its age by the database clock.
    pub last_heartbeat: Option<TimeView>,
    /// The runner holding (or last holding) the task.
    pub runner_id: Option<String>,
    /// `error_type: error_message` of a failed task.
    pub error: Option<String>,
}

/// A run of the past-runs list.
#[derive(Debug, Clone)]
pub struct PastRunView {
    /// The run id.
    pub id: i64,
    /// As in [`RunView::status`].
    pub status: &'static str,
    /// As in [`RunView::status_text`].
    pub status_text: &'static str,
    /// The Ruby version.
    pub ruby_version: String,
    /// When it started.
    pub created_at: TimeView,
    /// Its tasks.
    pub total: u64,
    /// Completed tasks.
    pub completed: u64,
    /// Failed tasks.
    pub failed: u64,
}

/// A time for a `<time datetime="...">` element.
#[derive(Debug, Clone)]
pub struct TimeView {
    /// RFC 3339, for the `datetime` attribute.
    pub iso: String,
    /// What the page shows: a UTC date and time, or an age.
    pub text: String,
}

impl TimeView {
    fn at(time: OffsetDateTime) -> Self {
        let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
        Self {
            iso: time.format(&Rfc3339).unwrap_or_default(),
            text: time.format(&format).unwrap_or_default(),
        }
    }

    fn age(time: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self {
            iso: time.format(&Rfc3339).unwrap_or_default(),
            text: format_age(now - time),
        }
    }
}

/// `12 s ago`, `3 min 4 s ago`, `2 h 5 min ago`.
pub fn format_age(age: Duration) -> String {
    let secs = age.whole_seconds().max(0);
    match secs {
        0 => "just now".to_owned(),
        1..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min {} s ago", secs / 60, secs % 60),
        _ => format!("{} h {} min ago", secs / 3600, secs % 3600 / 60),
    }
}

/// The status of a run as the dashboard names it.
fn run_status(state: RunState, stopped: bool) -> (&'static str, &'static str) {
    match (state, stopped) {
        (RunState::Running, false) => ("running", "running"),
        (RunState::Running, true) => ("stopping", "ended early, archive being built"),
        (RunState::Complete, false) => ("complete", "complete"),
        (RunState::Complete, true) => ("stopped", "complete (ended early)"),
    }
}

/// Reads the whole dashboard.
pub async fn load_dashboard(state: &AppState) -> anyhow::Result<DashboardView> {
    let current = match runs::get_latest_run(&state.db).await? {
        Some(run) => Some(load_run(state, run).await?),
        None => None,
    };
    let limit = i64::try_from(PAST_RUNS_SHOWN + 1).unwrap_or(i64::MAX);
    let past: Vec<RunModel> = run_history::get_recent_runs(&state.db, limit)
        .await?
        .into_iter()
        .filter(|run| {
            current
                .as_ref()
                .is_none_or(|current| current.id != run.id.0)
        })
        .take(PAST_RUNS_SHOWN)
        .collect();
    let ids: Vec<_> = past.iter().map(|run| run.id).collect();
    let mut counts = runs::get_task_counts(&state.db, &ids).await?;
    let past_runs = past
        .into_iter()
        .map(|run| {
            let counts = counts.remove(&run.id).unwrap_or_default();
            past_run_view(run, counts.all)
        })
        .collect();
    Ok(DashboardView { current, past_runs })
}

/// Reads one run and its tasks.
pub async fn load_run(state: &AppState, run: RunModel) -> anyhow::Result<RunView> {
    let now = run_history::get_database_now(&state.db).await?;
    let tasks = tasks::get_run_tasks(&state.db, run.id).await?;
    let gzip_url = match run_history::archive_key(&run) {
        Some(key) => Some(state.storage.get_url(key).await?),
        None => None,
    };
    let RunTaskCounts {
        all: counts,
        by_instance_type,
    } = runs::get_task_counts(&state.db, &[run.id])
        .await?
        .remove(&run.id)
        .unwrap_or_default();
    let tasks_hidden = tasks.len().saturating_sub(TASKS_SHOWN);
    let (status, status_text) = run_status(run.state, run.stopped_at.is_some());
    let archive_text = archive_text(&run, now);
    Ok(RunView {
        id: run.id.0,
        status,
        status_text,
        can_stop: run.state == RunState::Running
            && (run.stopped_at.is_none() || run.archive_state == ArchiveState::Failed),
        ruby_version: run.ruby_version,
        created_at: TimeView::at(run.created_at),
        stopped_at: run.stopped_at.map(TimeView::at),
        completed_at: run.completed_at.map(TimeView::at),
        archive_text,
        archive_error: (run.archive_state != ArchiveState::Uploaded)
            .then_some(run.archive_error)
            .flatten(),
        gzip_url,
        counts,
        runners: runner_rows(
            &by_instance_type,
            tasks::get_runners_seen(&state.db, run.id).await?,
            now,
        ),
        breakdown: by_instance_type
            .into_iter()
            .map(|group| BreakdownRow {
                provider: group.provider.to_string(),
                instance_type: group.instance_type,
                counts: group.counts,
            })
            .collect(),
        tasks: tasks
            .into_iter()
            .take(TASKS_SHOWN)
            .map(|task| task_row(task, now))
            .collect(),
        tasks_hidden,
    })
}

/// The archive builder's progress in words.
fn archive_text(run: &RunModel, now: OffsetDateTime) -> String {
    match run.archive_state {
        ArchiveState::None => "built once every task has finished".to_owned(),
        ArchiveState::Building => "being built".to_owned(),
        ArchiveState::Uploaded => "ready".to_owned(),
        ArchiveState::Failed => match run.archive_retry_at {
            Some(at) if at > now => format!(
                "{} failed build(s) in a row; the next attempt is in {} s",
                run.archive_attempts,
                (at - now).whole_seconds()
            ),
            _ => format!(
                "{} failed build(s) in a row; the next check tries again",
                run.archive_attempts
            ),
        },
    }
}

/// The runner hosts per type, from their slots (a slot's id is its host's id and `-<slot>`),
/// and a row for every type no runner held a task of.
fn runner_rows(
    types: &[runs::InstanceTypeCounts],
    slots: Vec<tasks::RunnerSeen>,
    now: OffsetDateTime,
) -> Vec<RunnerRow> {
    /// A host's slots folded together.
    #[derive(Default)]
    struct Host {
        slots: usize,
        busy: usize,
        last_seen: Option<OffsetDateTime>,
    }
    // By provider, instance type and host.
    let mut hosts: BTreeMap<(String, String, String), Host> = BTreeMap::new();
    for slot in slots {
        let key = (
            slot.provider.to_string(),
            slot.instance_type,
            host_of(&slot.runner_id).to_owned(),
        );
        let host = hosts.entry(key).or_default();
        host.slots += 1;
        host.busy += usize::from(slot.busy);
        host.last_seen = host.last_seen.max(slot.last_seen);
    }
    let mut rows: Vec<RunnerRow> = hosts
        .into_iter()
        .map(|((provider, instance_type, host), seen)| RunnerRow {
            provider,
            instance_type,
            host: Some(host),
            slots: seen.slots,
            busy: seen.busy,
            last_seen: seen.last_seen.map(|at| TimeView::age(at, now)),
        })
        .collect();
    for group in types {
        let provider = group.provider.to_string();
        if !rows
            .iter()
            .any(|row| row.provider == provider && row.instance_type == group.instance_type)
        {
            rows.push(RunnerRow {
                provider,
                instance_type: group.instance_type.clone(),
                host: None,
                slots: 0,
                busy: 0,
                last_seen: None,
            });
        }
    }
    rows.sort_by(|a, b| {
        (&a.provider, &a.instance_type, &a.host).cmp(&(&b.provider, &b.instance_type, &b.host))
    });
    rows
}

/// The host part of a slot's runner id: without its `-<slot>` suffix.
fn host_of(runner_id: &str) -> &str {
    match runner_id.rsplit_once('-') {
        Some((host, slot)) if !slot.is_empty() && slot.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => runner_id,
    }
}

fn task_row(task: TaskModel, now: OffsetDateTime) -> TaskRow {
    let error = match (&task.error_type, &task.error_message) {
        (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
        (Some(kind), None) => Some(kind.clone()),
        (None, message) => message.clone(),
    };
    TaskRow {
        id: task.id.0,
        provider: task.provider.to_string(),
        instance_type: task.instance_type,
        run: task.run,
        status: task.state.as_str(),
        phase: task.phase,
        current_benchmark: task.current_benchmark,
        progress_pct: task.progress_pct,
        last_heartbeat: task.last_heartbeat_at.map(|at| TimeView::age(at, now)),
        runner_id: task.runner_id,
        error: (task.state == TaskStatus::Failed)
            .then_some(error)
            .flatten(),
    }
}

fn past_run_view(run: RunModel, counts: TaskCounts) -> PastRunView {
    let (status, status_text) = run_status(run.state, run.stopped_at.is_some());
    PastRunView {
        id: run.id.0,
        status,
        status_text,
        ruby_version: run.ruby_version,
        created_at: TimeView::at(run.created_at),
        total: counts.total,
        completed: counts.completed,
        failed: counts.failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_belong_to_the_host_before_their_number() {
        assert_eq!(host_of("i-0abc123-2"), "i-0abc123");
        assert_eq!(host_of("local-x1-fb-2-1"), "local-x1-fb-2");
        assert_eq!(host_of("no-slot-"), "no-slot-");
        assert_eq!(host_of("plain"), "plain");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(Duration::seconds(-2)), "just now");
        assert_eq!(format_age(Duration::seconds(12)), "12 s ago");
        assert_eq!(format_age(Duration::seconds(184)), "3 min 4 s ago");
        assert_eq!(format_age(Duration::seconds(7500)), "2 h 5 min ago");
    }
}
