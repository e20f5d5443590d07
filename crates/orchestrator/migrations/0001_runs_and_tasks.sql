-- Runs and their tasks. One run is `running` at a time; the latest run (highest `seq`) is the
-- one `GET /run` and `POST /tasks/claim` talk about.

CREATE TABLE runs (
    -- The run id: Unix seconds chosen by the master script, or by the orchestrator.
    id BIGINT PRIMARY KEY CHECK (id > 0),
    -- Creation order. Run ids come from clients and need not grow, so "latest" needs its own
    -- column.
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'complete')),
    ruby_version TEXT NOT NULL,
    runs_per_instance_type INTEGER NOT NULL CHECK (runs_per_instance_type > 0),
    -- The resolved `ruby_bench` selection, returned inside every claimed task.
    ruby_bench JSONB NOT NULL,
    debug_mode BOOLEAN NOT NULL,
    -- The whole validated run config, as `POST /run/start` received it after defaults.
    config JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the run is ended early; pending tasks are then deleted.
    stopped_at TIMESTAMPTZ,
    -- Set together with `state = 'complete'` once the archive is uploaded.
    completed_at TIMESTAMPTZ,
    -- The archive builder's progress: none until every task is finished (or the run stopped).
    archive_state TEXT NOT NULL DEFAULT 'none'
        CHECK (archive_state IN ('none', 'building', 'uploaded', 'failed')),
    archive_key TEXT,
    archive_error TEXT,
    CHECK ((state = 'complete') = (completed_at IS NOT NULL)),
    CHECK (archive_state <> 'uploaded' OR archive_key IS NOT NULL)
);

-- At most one run is running, even when two `POST /run/start` race.
CREATE UNIQUE INDEX runs_one_running ON runs ((true)) WHERE state = 'running';

-- Heartbeats update a claimed task every 30 seconds per runner slot. A fillfactor of 70 leaves
-- room on each page for the new row version, so those updates can be HOT (heap-only tuple)
-- updates that write no index entries and need no vacuum of the indexes. HOT also requires that
-- no indexed column changes: the heartbeat columns (`last_heartbeat_at`, `phase`,
-- `current_benchmark`, `progress_pct`, `message`) must stay out of every index, including the
-- predicates of partial indexes.
CREATE TABLE tasks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs (id),
    provider TEXT NOT NULL CHECK (provider IN ('aws', 'azure', 'local')),
    instance_type TEXT NOT NULL,
    run INTEGER NOT NULL CHECK (run > 0),
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'claimed', 'completed', 'failed')),
    -- Bumped by every state change; claims compare and set it (optimistic locking).
    lock_version INTEGER NOT NULL DEFAULT 0,
    runner_id TEXT,
    claimed_at TIMESTAMPTZ,
    -- Heartbeat columns, all by the database clock.
    last_heartbeat_at TIMESTAMPTZ,
    phase TEXT CHECK (phase IN ('boot', 'provision', 'running', 'uploading', 'finished', 'error')),
    current_benchmark TEXT,
    progress_pct SMALLINT CHECK (progress_pct BETWEEN 0 AND 100),
    message TEXT,
    -- Set by `/complete`.
    completed_at TIMESTAMPTZ,
    s3_result_key TEXT,
    -- Set by `/fail`, the heartbeat timeout checker or an early stop.
    failed_at TIMESTAMPTZ,
    failed_by TEXT CHECK (failed_by IN ('runner', 'orchestrator')),
    error_type TEXT,
    error_message TEXT,
    s3_error_key TEXT,
    debug_mode BOOLEAN,
    UNIQUE (run_id, instance_type, run),
    CHECK ((state = 'pending') = (runner_id IS NULL)),
    CHECK ((state = 'completed') = (completed_at IS NOT NULL)),
    CHECK ((state = 'failed') = (failed_at IS NOT NULL))
) WITH (fillfactor = 70);

-- Claims look for pending tasks of one run, provider and instance type. Only `state` of this
-- index changes on a claim, and heartbeats never change it.
CREATE INDEX tasks_pending ON tasks (run_id, provider, instance_type, id) WHERE state = 'pending';
