-- The progress of long tasks on the event stream (api-gateway/events.h): every change of an
-- image task's state, progress or message (import, export, copy; written by nubo-imaged as it
-- works) is a row of task_events, written by a trigger in the transaction of the change, and
-- wakes the gateways' event threads as instance transitions do (0012). The console's image
-- import bar and `--wait` style clients follow them instead of polling the task.
CREATE TABLE task_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    task_id    text NOT NULL,
    kind       text NOT NULL,
    tenant_id  text NOT NULL,
    image_id   text,
    state      text NOT NULL,
    progress   integer NOT NULL,
    message    text NOT NULL DEFAULT ''
);
CREATE INDEX task_events_task ON task_events (task_id, id);

CREATE FUNCTION image_tasks_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state
       OR NEW.progress IS DISTINCT FROM OLD.progress
       OR NEW.status_message IS DISTINCT FROM OLD.status_message THEN
        INSERT INTO task_events (task_id, kind, tenant_id, image_id, state, progress, message)
        VALUES (NEW.id, NEW.kind, NEW.tenant_id, NEW.image_id, NEW.state, NEW.progress,
                NEW.status_message);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER image_tasks_events AFTER INSERT OR UPDATE OF state, progress, status_message
    ON image_tasks FOR EACH ROW EXECUTE FUNCTION image_tasks_record_event();
CREATE TRIGGER task_events_notify AFTER INSERT ON task_events
    FOR EACH STATEMENT EXECUTE FUNCTION instance_events_notify();
