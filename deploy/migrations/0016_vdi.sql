-- Hosted VDI desktops (docs/vdi.md): desktop pools of a service provider's tenant, their
-- desktops (each one instance of the tenant), the 'desktop' role of the provider's users who may
-- only use the connection broker, and the 'desktop-hours' meter that bills their sessions.
--
-- The gateway's broker (api-gateway/svc_vdi.c) assigns desktops to users; its worker keeps the
-- pools' spares warm, stops idle desktops, resets non-persistent ones and replaces dead ones.
-- Everything it knows is in these tables, so a gateway restart loses nothing and several
-- gateways may serve the same pools.

-- A user of the 'desktop' role belongs to a provider's tenant and may only sign in and use the
-- broker (the REST and EC2 front doors refuse everything else to them).
ALTER TABLE users DROP CONSTRAINT users_role_check,
    ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'member', 'reader', 'desktop'));
ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_role_check,
    ADD CONSTRAINT console_sessions_role_check
        CHECK (role IN ('admin', 'member', 'reader', 'desktop'));

-- A pool: desktops launched from one image with one instance type, at most 'size' of them, of
-- which 'spares' are kept running and unassigned for the next users. Persistent: a user keeps
-- the desktop they were given (its owner). Non-persistent: signing out resets it to the image.
-- A desktop (assigned or not) with no connected console for 'idle_stop_s' seconds is signed out
-- and stopped (0: never). Deleting a pool puts it in 'deleting' until the worker has terminated
-- its desktops' instances and removed it.
CREATE TABLE desktop_pools (
    id                  text PRIMARY KEY CHECK (id ~ '^pool-[0-9a-f]{17}$'),
    tenant_id           text NOT NULL REFERENCES tenants (id),
    name                text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$'),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 255),
    image_id            text NOT NULL REFERENCES images (id),
    instance_type       text NOT NULL REFERENCES instance_types (name),
    subnet_id           text REFERENCES subnets (id),
    security_group_ids  text[] NOT NULL DEFAULT '{}',
    size                integer NOT NULL CHECK (size BETWEEN 1 AND 1000),
    spares              integer NOT NULL CHECK (spares >= 0 AND spares <= size),
    persistent          boolean NOT NULL,
    idle_stop_s         integer NOT NULL CHECK (idle_stop_s BETWEEN 0 AND 2592000),
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleting')),
    -- The last launch that failed (quota, image, network), shown on the pool; the worker waits
    -- a little before it launches again.
    last_error          text,
    last_error_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX desktop_pools_name ON desktop_pools (tenant_id, name) WHERE state = 'active';

-- A desktop. Its states (docs/vdi.md):
--   available    no session; ready to be handed out (its instance running, or stopped when the
--                pool has more than its spares and it was idle)
--   assigned     in a session of 'assigned_user' (metered as desktop-hours)
--   reserved     persistent pool, signed out: it stays its owner's, no session
--   resetting    non-persistent, signed out: its instance is being stopped
--   restarting   its instance is starting again with instances.reset_root set, i.e. with its
--                root disk recreated from the image; available once it runs
--   terminating  its instance is being terminated (pool deleted, pool shrunk); then removed
-- 'instance_id' is NULL only between the row's insert and its launch; the launch's client
-- token is the desktop id, so a launch retried after a crash finds the same instance.
CREATE TABLE desktops (
    id              text PRIMARY KEY CHECK (id ~ '^dsk-[0-9a-f]{17}$'),
    pool_id         text NOT NULL REFERENCES desktop_pools (id) ON DELETE CASCADE,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    instance_id     text UNIQUE REFERENCES instances (id),
    state           text NOT NULL CHECK (state IN ('available', 'assigned', 'reserved',
                                                   'resetting', 'restarting', 'terminating')),
    owner_id        text REFERENCES users (id),    -- persistent pools: whose desktop it is
    assigned_user   text REFERENCES users (id),    -- the user whose session it is in
    assigned_at     timestamptz,
    -- The last time someone used it: connected through the broker, asked for a console ticket,
    -- signed out, or it became available. With vnc_connections (0015), where idleness starts.
    last_active_at  timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'assigned') = (assigned_user IS NOT NULL)),
    CHECK ((assigned_user IS NULL) = (assigned_at IS NULL))
);
CREATE INDEX desktops_pool ON desktops (pool_id, state);
-- One session per user and pool, and one owned desktop per user and pool: two connects of the
-- same user racing on two gateways cannot both take a desktop.
CREATE UNIQUE INDEX desktops_session ON desktops (pool_id, assigned_user)
    WHERE assigned_user IS NOT NULL;
CREATE UNIQUE INDEX desktops_owner ON desktops (pool_id, owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX desktops_user ON desktops (tenant_id, assigned_user) WHERE assigned_user IS NOT NULL;

-- Desktop-hours, an on/off meter of meter_events (0008) per user: it runs while the user holds
-- at least one desktop session, whatever the number of pools, and stops when the last one ends
-- (sign-out, idle sign-out, pool deletion, the desktop's instance dying). tenant = the
-- provider's, resource = the user id, sku = ''. The user's sessions are counted under a
-- per-user advisory lock, so that two sessions of one user starting or ending in concurrent
-- transactions write exactly one 'on' and one 'off' (the second transaction counts after the
-- first committed: each statement of a volatile function takes a new snapshot).
CREATE FUNCTION desktops_meter() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_old text;
    v_new text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        v_old := OLD.assigned_user;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        v_new := NEW.assigned_user;
    END IF;
    IF v_old IS NOT DISTINCT FROM v_new THEN
        RETURN NULL;
    END IF;
    -- In a fixed order, so that two transactions moving sessions between the same two users
    -- cannot deadlock.
    PERFORM pg_advisory_xact_lock(hashtext('nubo-vdi-meter'), hashtext(u))
        FROM unnest(ARRAY[v_old, v_new]) u WHERE u IS NOT NULL ORDER BY u;
    IF v_old IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM desktops d WHERE d.tenant_id = OLD.tenant_id
            AND d.assigned_user = v_old AND d.id <> OLD.id) THEN
        INSERT INTO meter_events (tenant_id, resource_id, meter, active)
        VALUES (OLD.tenant_id, v_old, 'desktop-hours', false);
    END IF;
    IF v_new IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM desktops d WHERE d.tenant_id = NEW.tenant_id
            AND d.assigned_user = v_new AND d.id <> NEW.id) THEN
        INSERT INTO meter_events (tenant_id, resource_id, meter, active)
        VALUES (NEW.tenant_id, v_new, 'desktop-hours', true);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER desktops_meter AFTER INSERT OR UPDATE OF assigned_user OR DELETE ON desktops
    FOR EACH ROW EXECUTE FUNCTION desktops_meter();

-- A desktop-hour in the default plan, on top of the instance-hours of the desktops' instances
-- (billed to the same tenant as any instance): 0.02 USD per user-hour.
INSERT INTO plan_prices (plan_id, meter, sku, unit, unit_quantity, price_micros) VALUES
    ('plan-default-1', 'desktop-hours', '', 'hour', 3600, 20000);
