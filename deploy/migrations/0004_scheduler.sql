-- Compute hosts, capacity claims, placement groups, and the work the scheduler drives.
--
-- Claims: an instance placed on a host holds (vcpus, memory_mib, disk_gib) there until it is
-- terminated or fails. hosts.used_* is the sum of the claims of the host's live instances; the
-- scheduler changes it only with a conditional UPDATE that re-checks the allocation rule
--     (total - reserved) * ratio >= used + requested
-- inside the statement, so several schedulers racing can never over-commit a host.
-- `nubo-scheduler --audit` recomputes the sums and repairs drift.

CREATE TABLE hosts (
    id                  text PRIMARY KEY CHECK (id ~ '^h-[0-9a-f]{17}$'),
    name                text NOT NULL UNIQUE,
    zone                text NOT NULL REFERENCES zones (name),
    -- 'up' and 'down' follow heartbeats; 'disabled' and 'draining' are the operator's.
    -- Only 'up' hosts with a fresh heartbeat (or simulated ones) get new instances.
    state               text NOT NULL DEFAULT 'up'
                        CHECK (state IN ('up', 'down', 'disabled', 'draining')),
    state_reason        text,
    vcpus               integer NOT NULL DEFAULT 0 CHECK (vcpus >= 0),
    memory_mib          bigint NOT NULL DEFAULT 0 CHECK (memory_mib >= 0),
    disk_gib            bigint NOT NULL DEFAULT 0 CHECK (disk_gib >= 0),
    reserved_vcpus      integer NOT NULL DEFAULT 0 CHECK (reserved_vcpus >= 0),
    reserved_memory_mib bigint NOT NULL DEFAULT 0 CHECK (reserved_memory_mib >= 0),
    reserved_disk_gib   bigint NOT NULL DEFAULT 0 CHECK (reserved_disk_gib >= 0),
    cpu_ratio           double precision NOT NULL DEFAULT 4.0 CHECK (cpu_ratio > 0),
    memory_ratio        double precision NOT NULL DEFAULT 1.0 CHECK (memory_ratio > 0),
    disk_ratio          double precision NOT NULL DEFAULT 1.0 CHECK (disk_ratio > 0),
    used_vcpus          integer NOT NULL DEFAULT 0,
    used_memory_mib     bigint NOT NULL DEFAULT 0,
    used_disk_gib       bigint NOT NULL DEFAULT 0,
    instance_count      integer NOT NULL DEFAULT 0,
    generation          bigint NOT NULL DEFAULT 0,    -- bumped by every claim and release
    traits              text[] NOT NULL DEFAULT '{}', -- e.g. {ssd,gpu}
    dedicated_tenant    text REFERENCES tenants (id), -- only this tenant's instances land here
    simulated           boolean NOT NULL DEFAULT false, -- no agent: the scheduler plays it
    agent_url           text,                         -- http://node:8775 (NULL when simulated)
    node_secret         text,                         -- the node credential, sealed (master key)
    last_heartbeat      timestamptz,
    cpu_load            double precision NOT NULL DEFAULT 0, -- from the agent's stats, 0..1
    stats               jsonb NOT NULL DEFAULT '{}',  -- the agent's last report
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE placement_groups (
    id              text PRIMARY KEY CHECK (id ~ '^pg-[0-9a-f]{17}$'),
    tenant_id       text NOT NULL REFERENCES tenants (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    strategy        text NOT NULL CHECK (strategy IN ('cluster', 'spread', 'partition')),
    partition_count integer NOT NULL DEFAULT 0 CHECK (partition_count BETWEEN 0 AND 7),
    state           text NOT NULL DEFAULT 'available'
                    CHECK (state IN ('pending', 'available', 'deleting', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

ALTER TABLE instances DROP CONSTRAINT instances_state_check;
ALTER TABLE instances ADD CONSTRAINT instances_state_check
    CHECK (state IN ('pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped',
                     'error'));

ALTER TABLE instances
    ADD COLUMN disk_gib           integer NOT NULL DEFAULT 0,  -- claim, with vcpus and memory_mib
    ADD COLUMN ephemeral_gib      integer NOT NULL DEFAULT 0,
    ADD COLUMN host_id            text REFERENCES hosts (id),  -- set while the claim is held
    ADD COLUMN tenancy            text NOT NULL DEFAULT 'default'
                                  CHECK (tenancy IN ('default', 'dedicated')),
    ADD COLUMN placement_group_id text REFERENCES placement_groups (id),
    ADD COLUMN partition_number   integer,                    -- partition placement groups
    -- The operation the scheduler must carry out on the agent ('spawn', 'stop', 'start',
    -- 'reboot', 'terminate'), NULL when none. op_seq changes with every new request, so that a
    -- driver finishing an older one does not clear a newer one; op_lease_until keeps two
    -- drivers off the same instance and lets another take over when one dies.
    ADD COLUMN pending_op         text CHECK (pending_op IN ('spawn', 'stop', 'start', 'reboot',
                                                             'terminate')),
    ADD COLUMN op_seq             bigint NOT NULL DEFAULT 0,
    ADD COLUMN op_lease_until     timestamptz,
    ADD COLUMN attempts           integer NOT NULL DEFAULT 0,  -- spawn attempts so far
    ADD COLUMN tried_hosts        text[] NOT NULL DEFAULT '{}', -- hosts that failed to spawn it
    ADD COLUMN host_down          boolean NOT NULL DEFAULT false, -- its host stopped heartbeating
    -- RunInstances' MinCount, on every instance of the reservation: the scheduler places a
    -- reservation all-or-nothing down to this many instances, as EC2 does.
    ADD COLUMN min_count          integer NOT NULL DEFAULT 1;

-- New launches wait for placement; the gateway sets pending_op = 'spawn' on insert.
ALTER TABLE instances ALTER COLUMN pending_op SET DEFAULT 'spawn';
UPDATE instances SET pending_op = NULL WHERE state <> 'pending';

CREATE INDEX instances_unplaced ON instances (launch_time, reservation_id, launch_index)
    WHERE pending_op = 'spawn' AND host_id IS NULL;
CREATE INDEX instances_work ON instances (op_lease_until)
    WHERE pending_op IS NOT NULL AND host_id IS NOT NULL;
CREATE INDEX instances_host ON instances (host_id) WHERE host_id IS NOT NULL;

-- Every state transition of an instance, written by a trigger in the transaction that makes it:
-- what the API's history shows and what billing meters (running time per instance type).
CREATE TABLE instance_events (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    instance_id    text NOT NULL,
    tenant_id      text NOT NULL,
    instance_type  text NOT NULL,
    host_id        text,
    from_state     text,          -- NULL for the launch
    to_state       text NOT NULL,
    reason         text
);
CREATE INDEX instance_events_instance ON instance_events (instance_id, id);
CREATE INDEX instance_events_tenant_at ON instance_events (tenant_id, at);

CREATE FUNCTION instances_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO instance_events (instance_id, tenant_id, instance_type, host_id, from_state,
                                     to_state, reason)
        VALUES (NEW.id, NEW.tenant_id, NEW.instance_type, NEW.host_id,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state,
                NEW.state_reason_code);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER instances_events AFTER INSERT OR UPDATE OF state ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_record_event();

-- Where the image bytes are, for the agents: a URL (file:// for operator-registered local
-- images, the image store's URL later), their SHA-256, format, and the kernel/ramdisk of
-- kernel-booted (aki/ari) images.
ALTER TABLE images
    ADD COLUMN location    text,
    ADD COLUMN sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN size_bytes  bigint,
    ADD COLUMN disk_format text NOT NULL DEFAULT 'raw' CHECK (disk_format IN ('raw', 'qcow2')),
    ADD COLUMN kernel_id   text REFERENCES images (id),
    ADD COLUMN ramdisk_id  text REFERENCES images (id),
    ADD COLUMN kernel_args text;

-- Added for nubo-scheduler (issue 4).
--
-- A stopped instance whose host was evacuated has no host: StartInstances then leaves it
-- (pending_op 'start', host_id NULL) for the scheduler to place again, like a new launch.
CREATE INDEX instances_unplaced_start ON instances (launch_time, reservation_id, launch_index)
    WHERE pending_op = 'start' AND host_id IS NULL;
-- The live members of a placement group (placement filters, DeletePlacementGroup's InUse check).
CREATE INDEX instances_placement_group ON instances (placement_group_id)
    WHERE placement_group_id IS NOT NULL;

-- Evacuates host 'p_host' (down or disabled; the caller checks): every live instance on it
-- loses its claim and goes back to the scheduler, which places it on another host:
--   pending, running (also with a reboot pending)  -> pending, pending_op 'spawn', unplaced
--   stopping, stopped                              -> stopped, unplaced (StartInstances places it)
--   shutting-down                                  -> terminated
-- The host's used_* drop to zero (nothing live is left on it), op_seq moves on so that a driver
-- still talking to the dead host cannot complete an older operation, and the schedulers are
-- woken. Returns the ids of the instances moved.
CREATE FUNCTION host_evacuate(p_host text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
    v_ids text[];
BEGIN
    -- Host row first, then its instances: the order every claim release takes.
    SELECT name INTO v_name FROM hosts WHERE id = p_host FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'host "%" does not exist', p_host USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM 1 FROM instances WHERE host_id = p_host ORDER BY id FOR UPDATE;
    WITH moved AS (
        UPDATE instances i SET
            state = CASE WHEN i.state = 'shutting-down' THEN 'terminated'
                         WHEN i.state IN ('stopping', 'stopped') THEN 'stopped'
                         ELSE 'pending' END,
            pending_op = CASE WHEN i.state = 'shutting-down' THEN NULL
                              WHEN i.state IN ('stopping', 'stopped') THEN NULL
                              ELSE 'spawn' END,
            terminated_at = CASE WHEN i.state = 'shutting-down' THEN now()
                                 ELSE i.terminated_at END,
            state_reason_code = CASE WHEN i.state = 'shutting-down'
                                     THEN i.state_reason_code ELSE 'Server.InternalError' END,
            state_reason_message = format('evacuated from host "%s" (%s)', v_name, p_host),
            host_id = NULL, host_down = false, op_seq = i.op_seq + 1, op_lease_until = NULL,
            attempts = 0, tried_hosts = '{}', updated_at = now()
        WHERE i.host_id = p_host AND i.state NOT IN ('terminated', 'error')
        RETURNING i.id)
    SELECT COALESCE(array_agg(id ORDER BY id), '{}') INTO v_ids FROM moved;
    -- Dead instances never hold a host; clear any left by an older release.
    UPDATE instances SET host_id = NULL WHERE host_id = p_host;
    UPDATE hosts SET used_vcpus = 0, used_memory_mib = 0, used_disk_gib = 0, instance_count = 0,
                     generation = generation + 1, updated_at = now()
    WHERE id = p_host;
    PERFORM pg_notify('nubo_sched', 'evacuate');
    RETURN v_ids;
END
$$;
