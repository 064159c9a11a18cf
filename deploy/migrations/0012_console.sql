-- The web console (docs/console.md): sign-in sessions, and the wake-up of the event stream.
--
-- Passwords live in users.password_hash (0001), as "$scrypt$ln=15,r=8,p=1$<salt>$<key>"
-- (api-gateway/kdf.c): scrypt with a random 16-byte salt per user. NULL: no console sign-in.

ALTER TABLE users ADD COLUMN password_changed_at timestamptz;

-- A signed-in browser. The cookie holds 32 random bytes; only their SHA-256 is stored, so that
-- a copy of this table signs nobody in. Signing out deletes the row; so does a password change
-- (the user's other sessions), and disabling the user or tenant stops them at the next request.
CREATE TABLE console_sessions (
    id_hash       bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role          text NOT NULL CHECK (role IN ('admin', 'member', 'reader')), -- at sign-in
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(), -- refreshed at most once a minute
    expires_at    timestamptz NOT NULL,               -- absolute end, whatever the use
    source_addr   inet,
    user_agent    text
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Every instance transition is a row of instance_events (0004), written in the transaction that
-- makes it. Each gateway LISTENs on 'nubo_events' and, when woken, reads the rows it has not
-- yet published (api-gateway/events.c): the table is what is published, the notification only
-- says when to look. PostgreSQL folds identical notifications of one transaction into one.
CREATE FUNCTION instance_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nubo_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_events_notify AFTER INSERT ON instance_events
    FOR EACH STATEMENT EXECUTE FUNCTION instance_events_notify();
