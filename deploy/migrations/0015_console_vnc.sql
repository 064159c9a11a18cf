-- The in-browser VM console (docs/console.md): single-use tickets that open an instance's VNC
-- display through the gateway's WebSocket proxy, and the live proxied connections.
--
-- A ticket is 32 random bytes given once to the caller who asked for it (POST
-- /v1/instances/{id}/console); only their SHA-256 is kept. Opening the WebSocket consumes it
-- (used_at is set by a conditional UPDATE, so two gateways cannot both accept it) and it is
-- good for a short time only (console.ticket_ttl_s, 30 s by default).
CREATE TABLE console_tickets (
    id_hash      bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    instance_id  text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_from    inet
);
CREATE INDEX console_tickets_expires ON console_tickets (expires_at);

-- One row per proxied VNC connection, kept while it lives: the gateway refreshes seen_at every
-- few seconds and sets closed_at when it ends. A gateway that dies leaves seen_at to age, so
-- "connected" means closed_at IS NULL AND seen_at within the last 30 s. The VDI broker reads
-- this to find idle desktops; operators read it to see who watches which screen.
CREATE TABLE vnc_connections (
    id           bigserial PRIMARY KEY,
    instance_id  text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    source_addr  inet,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    bytes_in     bigint NOT NULL DEFAULT 0,   -- browser to guest
    bytes_out    bigint NOT NULL DEFAULT 0    -- guest to browser
);
CREATE INDEX vnc_connections_live ON vnc_connections (instance_id) WHERE closed_at IS NULL;
