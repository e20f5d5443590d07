-- The dashboard: operator sessions, and notifications that push live updates to it.

-- Operator sessions of the dashboard, created by a login with OPERATOR_PASSWORD. The cookie
-- holds a random token; the table holds only its SHA-256, so a read of the table gives no
-- usable cookie. Each session has its own CSRF token for the forms that change state.
CREATE TABLE operator_sessions (
    token_sha256 TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);

-- Every change of a run or a task notifies the channel `rcb_dashboard` with the run id; the
-- dashboard's event stream listens on it. Triggers keep the API's handlers unaware of the
-- dashboard, and they index nothing, so heartbeat updates stay HOT. Notifications are sent at
-- commit, and Postgres folds identical ones of a transaction into one.

-- Tasks change in bulk (a run's insert, an early stop): statement triggers with transition
-- tables notify once per run touched, not once per row. A statement that changed no row
-- notifies nothing.
CREATE FUNCTION notify_dashboard_of_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_run BIGINT;
BEGIN
    FOR changed_run IN SELECT DISTINCT run_id FROM changed_tasks LOOP
        PERFORM pg_notify('rcb_dashboard', changed_run::text);
    END LOOP;
    RETURN NULL;
END
$$;

-- A trigger with transition tables may have only one event, hence three.
CREATE TRIGGER tasks_inserted_notify_dashboard AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS changed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_dashboard_of_tasks();
CREATE TRIGGER tasks_updated_notify_dashboard AFTER UPDATE ON tasks
    REFERENCING NEW TABLE AS changed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_dashboard_of_tasks();
CREATE TRIGGER tasks_deleted_notify_dashboard AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS changed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_dashboard_of_tasks();

-- Runs change one row at a time.
CREATE FUNCTION notify_dashboard_of_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('rcb_dashboard', OLD.id::text);
    ELSE
        PERFORM pg_notify('rcb_dashboard', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_changed_notify_dashboard AFTER INSERT OR UPDATE OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION notify_dashboard_of_run();
