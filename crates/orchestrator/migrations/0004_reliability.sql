-- No task lost to the orchestrator's own faults (docs/decisions.md, "Reliability").

-- When the orchestrator could hear runners: `listening_since` starts the current stretch of
-- time in which it has been up with its database reachable, without a gap. Silence (a task's
-- heartbeats, a type's runners) only counts within that stretch. One row, written by every
-- periodic check: a process start, or a gap between two checks longer than the checks allow
-- (the process or the database was away), starts a new stretch.
CREATE TABLE orchestrator_hearing (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    listening_since TIMESTAMPTZ NOT NULL,
    last_check_at TIMESTAMPTZ NOT NULL
);

-- A task whose type no runner came for is failed (`no_runner`) without ever having had a
-- runner: pending tasks have none, claimed ones have one, finished ones may lack it.
ALTER TABLE tasks
    DROP CONSTRAINT tasks_check,
    ADD CONSTRAINT tasks_runner_check CHECK (
        CASE state
            WHEN 'pending' THEN runner_id IS NULL
            WHEN 'claimed' THEN runner_id IS NOT NULL
            ELSE true
        END);

-- A task given back by a runner whose host could not prepare it (image pull, ruby-bench
-- fetch, Docker): it went back to pending, and these say how often and why the last time.
ALTER TABLE tasks
    ADD COLUMN release_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN release_message TEXT;

-- The archive builder's attempts: how many failed in a row, and when the next may start
-- (backoff between failed builds).
ALTER TABLE runs
    ADD COLUMN archive_attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN archive_retry_at TIMESTAMPTZ;
