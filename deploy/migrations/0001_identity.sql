-- Tenants (accounts), their users, access keys and quotas.
--
-- Access-key secrets are sealed with AES-256-GCM under the master key file (SigV4 needs the
-- secret itself, so it cannot be hashed); only the gateway holds the master key.

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[0-9]{12}$'), -- EC2 owner id: 12 digits
    name        text NOT NULL UNIQUE,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             text PRIMARY KEY,               -- "user-" + 17 hex
    tenant_id      text NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'member', 'reader')),
    enabled        boolean NOT NULL DEFAULT true,
    password_hash  text,                           -- for the web console; NULL: keys only
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE access_keys (
    id             text PRIMARY KEY CHECK (id ~ '^NKIA[A-Z2-7]{16}$'),
    user_id        text NOT NULL REFERENCES users (id),
    secret_sealed  text NOT NULL,                  -- nb_seal() text, AAD = key id
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_keys_user ON access_keys (user_id);

CREATE TABLE quotas (
    tenant_id        text PRIMARY KEY REFERENCES tenants (id),
    max_instances    integer NOT NULL DEFAULT 20 CHECK (max_instances >= 0),
    max_vcpus        integer NOT NULL DEFAULT 64 CHECK (max_vcpus >= 0),
    max_memory_mib   bigint  NOT NULL DEFAULT 262144 CHECK (max_memory_mib >= 0),
    max_elastic_ips  integer NOT NULL DEFAULT 5 CHECK (max_elastic_ips >= 0),
    max_image_bytes  bigint  NOT NULL DEFAULT 107374182400 CHECK (max_image_bytes >= 0)
);
