-- The compute catalogue (zones, instance types, images) and tenants' compute resources
-- (key pairs, instances, tags), plus ClientToken idempotency.
--
-- Every tenant resource carries tenant_id, and every query of the service layer filters on it:
-- another tenant's resource is indistinguishable from one that does not exist.

CREATE TABLE zones (
    name        text PRIMARY KEY,              -- "nubo-1a"
    region      text NOT NULL,                 -- "nubo-1"
    state       text NOT NULL DEFAULT 'available'
                CHECK (state IN ('available', 'impaired', 'unavailable'))
);
INSERT INTO zones (name, region) VALUES ('nubo-1a', 'nubo-1');

-- Managed by the operator (admin REST API). Names follow EC2's family.size form so that
-- scripts written for EC2 find familiar names.
CREATE TABLE instance_types (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]*\.[a-z0-9]+$'),
    vcpus         integer NOT NULL CHECK (vcpus > 0),
    memory_mib    integer NOT NULL CHECK (memory_mib > 0),
    disk_gib      integer NOT NULL DEFAULT 0 CHECK (disk_gib >= 0),      -- root disk
    ephemeral_gib integer NOT NULL DEFAULT 0 CHECK (ephemeral_gib >= 0), -- extra local disk
    traits        text[] NOT NULL DEFAULT '{}',  -- required host traits, e.g. {gpu}
    enabled       boolean NOT NULL DEFAULT true
);
INSERT INTO instance_types (name, vcpus, memory_mib, disk_gib, ephemeral_gib) VALUES
    ('t3.nano', 1, 512, 8, 0),
    ('t3.micro', 1, 1024, 8, 0),
    ('t3.small', 2, 2048, 16, 0),
    ('t3.medium', 2, 4096, 32, 0),
    ('m5.large', 2, 8192, 32, 0),
    ('m5.xlarge', 4, 16384, 64, 0),
    ('c5.large', 2, 4096, 32, 0),
    ('r5.large', 2, 16384, 32, 0),
    ('m5d.large', 2, 8192, 32, 75);

-- Image records. The image store (nubo-imaged) owns their bytes; here is what the API shows.
CREATE TABLE images (
    id                  text PRIMARY KEY CHECK (id ~ '^a[mkr]i-[0-9a-f]{17}$'),
    tenant_id           text NOT NULL REFERENCES tenants (id),  -- the owner
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    state               text NOT NULL DEFAULT 'available'
                        CHECK (state IN ('pending', 'available', 'failed', 'deregistered')),
    is_public           boolean NOT NULL DEFAULT false,
    image_type          text NOT NULL DEFAULT 'machine'
                        CHECK (image_type IN ('machine', 'kernel', 'ramdisk')),
    architecture        text NOT NULL DEFAULT 'x86_64',
    root_device_name    text NOT NULL DEFAULT '/dev/vda',
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE key_pairs (
    id           text PRIMARY KEY CHECK (id ~ '^key-[0-9a-f]{17}$'),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    name         text NOT NULL,
    key_type     text NOT NULL CHECK (key_type IN ('rsa', 'ed25519')),
    fingerprint  text NOT NULL,
    public_key   text NOT NULL,                -- OpenSSH one-line form
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE instances (
    id               text PRIMARY KEY CHECK (id ~ '^i-[0-9a-f]{17}$'),
    tenant_id        text NOT NULL REFERENCES tenants (id),
    reservation_id   text NOT NULL,
    launch_index     integer NOT NULL DEFAULT 0,
    image_id         text NOT NULL REFERENCES images (id),
    instance_type    text NOT NULL REFERENCES instance_types (name),
    vcpus            integer NOT NULL,         -- copied from the type at launch: the claim
    memory_mib       integer NOT NULL,
    key_name         text,
    zone             text NOT NULL REFERENCES zones (name),
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'shutting-down', 'terminated',
                                      'stopping', 'stopped')),
    state_reason_code     text,
    state_reason_message  text,
    user_data        text,                     -- base64, as given
    client_token     text,
    tags             jsonb NOT NULL DEFAULT '{}',  -- copy of the instance's rows in tags
    launch_time      timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    terminated_at    timestamptz
);
-- DescribeInstances pages in (reservation, instance) order: this index serves it without a sort
-- (the page condition "(reservation_id, id) > ($2, $3)" is an index condition), and it finds
-- a reservation's instances.
CREATE INDEX instances_tenant ON instances (tenant_id, reservation_id, id);
CREATE INDEX instances_live ON instances (tenant_id) WHERE state <> 'terminated';

-- Tags of any tenant resource (instances, images, key pairs, later VPCs...).
CREATE TABLE tags (
    tenant_id      text NOT NULL REFERENCES tenants (id),
    resource_id    text NOT NULL,
    resource_type  text NOT NULL,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    value          text NOT NULL DEFAULT '' CHECK (length(value) <= 256),
    PRIMARY KEY (tenant_id, resource_id, key)
);
CREATE INDEX tags_key ON tags (tenant_id, key, value);

-- instances.tags mirrors the instance's rows in tags, kept by this trigger in the same
-- transaction as the tag change, so that a DescribeInstances page reads its instances with one
-- index scan instead of one tag lookup per instance. The tags table stays the source of truth
-- (DescribeTags, filters).
CREATE FUNCTION instance_tags_refresh(p_tenant text, p_instance text) RETURNS void
LANGUAGE sql AS $$
    UPDATE instances SET tags = COALESCE((SELECT jsonb_object_agg(t.key, t.value) FROM tags t
                                          WHERE t.tenant_id = p_tenant
                                          AND t.resource_id = p_instance), '{}')
    WHERE id = p_instance;
$$;

CREATE FUNCTION instances_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.resource_type = 'instance' THEN
        PERFORM instance_tags_refresh(OLD.tenant_id, OLD.resource_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.resource_type = 'instance' THEN
        PERFORM instance_tags_refresh(NEW.tenant_id, NEW.resource_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tags_sync_instances AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION instances_tags_sync();

-- ClientToken idempotency: the first request with a token records its result; a retry with the
-- same token and parameters gets the same result, with other parameters an error.
CREATE TABLE client_tokens (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    token        text NOT NULL CHECK (length(token) BETWEEN 1 AND 64),
    action       text NOT NULL,
    params_hash  text NOT NULL,
    result_id    text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token)
);
