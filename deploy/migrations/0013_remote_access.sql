-- Remote access into a VPC for single users, with WireGuard (issue 7). EC2 has no WireGuard API
-- (its Client VPN uses certificates): this is nubo's own, REST only (/v1/remote-access).
--
-- An endpoint belongs to one VPC. It has a client CIDR (the users' addresses, outside the VPC),
-- a server key pair (X25519, base64 as WireGuard writes it; the private key sealed under the
-- gateway's master key, never returned by the API), an outside address from the public pool
-- (like an elastic IP, under the pool's advisory lock) and the host that runs it (chosen as
-- vpn_connections.host_id is: the 'up' host with the lowest id). Each peer is one user's
-- device: the public key the user made (the private key never leaves the device) and an
-- address of the client CIDR.
--
-- What the data plane (nubo-netctl) reads: on the endpoint's host, a network namespace with
-- wireguard-go listening on outside_ip:listen_port, one WireGuard peer per row of
-- remote_access_peers (allowed-ips = its address/32); on every host of the VPC, flows routing
-- the client CIDR to the endpoint's inside leg (its address: the client CIDR's first host).
-- Every change bumps netctl_versions.desired of the hosts concerned (the triggers below).

CREATE TABLE remote_access_endpoints (
    id           text PRIMARY KEY CHECK (id ~ '^rae-[0-9a-f]{17}$'),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    vpc_id       text NOT NULL REFERENCES vpcs (id),
    client_cidr  cidr NOT NULL CHECK (family(client_cidr) = 4
                                      AND masklen(client_cidr) BETWEEN 16 AND 29),
    public_key   text NOT NULL CHECK (public_key ~ '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$'),
    private_key  text NOT NULL,  -- nb_seal() under the master key, the id as associated data
    outside_ip   inet NOT NULL CHECK (family(outside_ip) = 4 AND masklen(outside_ip) = 32),
    listen_port  integer NOT NULL DEFAULT 51820 CHECK (listen_port BETWEEN 1 AND 65535),
    host_id      text REFERENCES hosts (id) ON DELETE SET NULL,
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 255),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX remote_access_endpoints_outside_ip ON remote_access_endpoints (outside_ip);
CREATE INDEX remote_access_endpoints_tenant ON remote_access_endpoints (tenant_id);
CREATE INDEX remote_access_endpoints_vpc ON remote_access_endpoints (vpc_id);

CREATE TABLE remote_access_peers (
    id           text PRIMARY KEY CHECK (id ~ '^rap-[0-9a-f]{17}$'),
    endpoint_id  text NOT NULL REFERENCES remote_access_endpoints (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL REFERENCES tenants (id),
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 255),
    public_key   text NOT NULL CHECK (public_key ~ '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$'),
    address      inet NOT NULL CHECK (family(address) = 4 AND masklen(address) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, public_key),
    UNIQUE (endpoint_id, address)
);
CREATE INDEX remote_access_peers_tenant ON remote_access_peers (tenant_id);

-- As in 0008, plus: the host running a remote-access endpoint of VPC 'p_vpc' is one of the
-- VPC's hosts.
CREATE OR REPLACE FUNCTION netctl_bump(p_vpc text, p_host text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO netctl_versions (host_id)
    SELECT h.id FROM hosts h
    WHERE h.id = p_host
       OR h.id IN (SELECT i.host_id FROM network_interfaces n JOIN instances i
                   ON i.id = n.instance_id WHERE n.vpc_id = p_vpc AND i.host_id IS NOT NULL)
       OR h.id IN (SELECT c.host_id FROM vpn_connections c JOIN vpn_gateways g
                   ON g.id = c.vpn_gateway_id WHERE g.vpc_id = p_vpc AND c.state <> 'deleted'
                   AND c.host_id IS NOT NULL)
       OR h.id IN (SELECT r.host_id FROM remote_access_endpoints r
                   WHERE r.vpc_id = p_vpc AND r.host_id IS NOT NULL)
    ORDER BY h.id
    ON CONFLICT (host_id) DO UPDATE SET desired = netctl_versions.desired + 1;
$$;

-- An endpoint made, deleted or moved: the hosts of its VPC and its host (the one it left too).
CREATE FUNCTION remote_access_endpoints_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM netctl_bump(OLD.vpc_id, OLD.host_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM netctl_bump(NEW.vpc_id, NEW.host_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER remote_access_endpoints_netctl
    AFTER INSERT OR DELETE OR UPDATE OF host_id, vpc_id, client_cidr, outside_ip, listen_port
    ON remote_access_endpoints
    FOR EACH ROW EXECUTE FUNCTION remote_access_endpoints_sync();

-- A peer added or removed: its endpoint's host (and the VPC's, whose flows do not change, but
-- netctl_bump() has no narrower form). Gone with its endpoint: that one's trigger bumped.
CREATE FUNCTION remote_access_peers_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM netctl_bump(NULL, e.host_id) FROM remote_access_endpoints e
        WHERE e.id = COALESCE(NEW.endpoint_id, OLD.endpoint_id) AND e.host_id IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER remote_access_peers_netctl AFTER INSERT OR DELETE OR UPDATE
    ON remote_access_peers
    FOR EACH ROW EXECUTE FUNCTION remote_access_peers_sync();

-- A VPC with a remote-access endpoint cannot be deleted (said as 0008 says it of its gateways).
CREATE FUNCTION vpcs_remote_access_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM remote_access_endpoints WHERE vpc_id = OLD.id) THEN
        RAISE EXCEPTION 'The vpc ''%'' has dependencies and cannot be deleted (it has a '
                        'remote-access endpoint).', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER vpcs_remote_access BEFORE DELETE ON vpcs
    FOR EACH ROW EXECUTE FUNCTION vpcs_remote_access_check();
