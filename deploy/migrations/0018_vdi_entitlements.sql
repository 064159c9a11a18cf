-- Per-pool entitlements of hosted VDI desktops (docs/vdi.md, "entitlements"): which of the
-- provider's desktop users may use which pool.
--
-- A pool's 'entitlement' is 'all' (any user of the tenant may connect: the behaviour before
-- this migration, kept for every existing pool) or 'listed' (the desktop users granted the
-- pool in desktop_pool_users may; the tenant's admins and members, who manage the pool, still
-- may). The grants are the provider's list; they go with the pool and with the user.
ALTER TABLE desktop_pools
    ADD COLUMN entitlement text NOT NULL DEFAULT 'all' CHECK (entitlement IN ('all', 'listed'));

CREATE TABLE desktop_pool_users (
    pool_id     text NOT NULL REFERENCES desktop_pools (id) ON DELETE CASCADE,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pool_id, user_id)
);
-- A user's grants, for when a user goes.
CREATE INDEX desktop_pool_users_user ON desktop_pool_users (user_id);
