-- Claims read pending tasks in the order of their run number (run 1 of an instance type before
-- run 2). The index of pending tasks is keyed in that order so that it is the only index that
-- yields it: keyed by `id`, the planner could walk the primary key instead, past every task
-- already claimed, whenever its statistics still say that most tasks are pending (a new run's
-- first minutes). Only `state` of this index changes on a claim; heartbeats change none of its
-- columns, so they stay HOT updates.
DROP INDEX tasks_pending;
CREATE INDEX tasks_pending ON tasks (run_id, provider, instance_type, run, id)
    WHERE state = 'pending';
