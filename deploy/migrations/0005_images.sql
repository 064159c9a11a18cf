-- The image store (issue 6): image bytes in nubo-imaged's backend, uploads, imports/exports,
-- launch permissions, and the storage usage that billing meters.
--
-- An image's bytes live in the image store under images.store_key ("images/ami-..."), in the
-- format the compute nodes boot (images.disk_format, raw or qcow2); images.location is then the
-- URL the agents fetch them from (nubo-imaged's, signed). What a tenant uploaded in another
-- format (VHD, VMDK, OVA) waits as a blob "uploads/..." for nubo-imaged to validate and
-- convert it (an image_tasks row of kind 'import').

ALTER TABLE images
    ADD COLUMN state_reason   text,          -- why an image is 'failed', e.g. a corrupt VHD
    ADD COLUMN source_format  text CHECK (source_format IN ('raw', 'qcow2', 'vhd', 'vmdk', 'ova')),
    ADD COLUMN virtual_size   bigint,        -- the disk size the guest sees, bytes
    ADD COLUMN store_key      text,          -- the blob in the image store, NULL if none
    ADD COLUMN stored_bytes   bigint NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0),
    ADD COLUMN properties     jsonb NOT NULL DEFAULT '{}', -- from an OVF: cpu, memory, os, disks
    ADD COLUMN suggested_type text,          -- an instance type that fits the OVF's hardware
    ADD COLUMN source_image_id text,         -- CopyImage: the image copied
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now();

-- Names are unique among a tenant's live images only: a deregistered image frees its name.
ALTER TABLE images DROP CONSTRAINT images_tenant_id_name_key;
CREATE UNIQUE INDEX images_tenant_name_live ON images (tenant_id, name)
    WHERE state <> 'deregistered';

-- ModifyImageAttribute launchPermission: tenants other than the owner that may launch an image.
CREATE TABLE image_launch_permissions (
    image_id   text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, tenant_id)
);
CREATE INDEX image_launch_permissions_tenant ON image_launch_permissions (tenant_id);

-- Work for nubo-imaged: import (validate, convert), export (to OVA), copy. Claimed with a lease
-- (FOR UPDATE SKIP LOCKED), so several nubo-imaged may run; a lease that runs out (a killed
-- worker) lets another take the task again, up to a few attempts.
CREATE TABLE image_tasks (
    id            text PRIMARY KEY CHECK (id ~ '^(import-ami|export-ami|copy-ami)-[0-9a-f]{17}$'),
    kind          text NOT NULL CHECK (kind IN ('import', 'export', 'copy')),
    tenant_id     text NOT NULL REFERENCES tenants (id),
    image_id      text NOT NULL REFERENCES images (id),
    source_key    text,          -- import: the uploaded blob; copy: the source image's blob
    source_format text,          -- import: what the tenant said it is, or NULL to detect
    source_url    text,          -- import: fetched into source_key first (ImportImage, CreateImage)
    trusted       boolean NOT NULL DEFAULT false, -- source_url is the control plane's own (an
                                                  -- agent's snapshot), not a tenant's
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'active', 'completed', 'failed')),
    status_message text NOT NULL DEFAULT '',
    progress      integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    result_key    text,          -- export: the OVA blob
    result_bytes  bigint,
    result_sha256 text,
    attempts      integer NOT NULL DEFAULT 0,
    lease_until   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_tasks_todo ON image_tasks (created_at) WHERE state IN ('pending', 'active');
CREATE INDEX image_tasks_image ON image_tasks (image_id);

-- Image storage, metered: every change of an image's stored bytes is an event, written by this
-- trigger in the same transaction as the change, so billing integrates bytes over time
-- (byte-seconds) with nothing lost or counted twice. A deregistered image stores nothing.
CREATE TABLE image_storage_events (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    image_id   text NOT NULL,
    bytes      bigint NOT NULL CHECK (bytes >= 0),
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX image_storage_events_tenant ON image_storage_events (tenant_id, at);

CREATE FUNCTION images_record_storage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_bytes bigint := CASE WHEN NEW.state = 'deregistered' THEN 0 ELSE NEW.stored_bytes END;
    old_bytes bigint := 0;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_bytes := CASE WHEN OLD.state = 'deregistered' THEN 0 ELSE OLD.stored_bytes END;
    END IF;
    IF now_bytes <> old_bytes THEN
        INSERT INTO image_storage_events (tenant_id, image_id, bytes)
        VALUES (NEW.tenant_id, NEW.id, now_bytes);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER images_storage AFTER INSERT OR UPDATE OF stored_bytes, state ON images
    FOR EACH ROW EXECUTE FUNCTION images_record_storage();

-- Resumable multipart uploads: parts land as blobs "parts/IMAGE/N" (each checked against its
-- own digest) and are joined, in order, into the image's upload when the client completes it.
-- A part sent again replaces the earlier one; what the client has sent survives a broken
-- connection, so it resends only the parts that are missing.
CREATE TABLE image_upload_parts (
    image_id    text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    part_number integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    store_key   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, part_number)
);
