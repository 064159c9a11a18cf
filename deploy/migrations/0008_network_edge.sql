-- Tenant networks (issue 7, second slice) and their usage events (issue 8): the edge of a VPC.
-- Internet gateways, route tables, elastic IPs, and site-to-site VPN (virtual private gateways,
-- customer gateways, VPN connections with static routes); and meter_events, the on/off usage
-- events that bill elastic IPs and VPN connections.
--
-- What the data plane (nubo-netctl) reads, all of it from these tables:
--   * internet_gateways.vpc_id: the VPC the gateway is attached to (NULL: detached); at most
--     one per VPC. A VPC without one has no path to or from the internet.
--   * The routes of a subnet: the table associated with it (route_table_associations), or else
--     its VPC's main table (route_tables.main); the view subnet_effective_routes lists them,
--     the implicit 'local' route of the VPC's CIDR first. A route whose gateway is not attached
--     to the table's VPC is a 'blackhole' (it stays, as in EC2, and carries nothing).
--   * addresses.public_ip <-> addresses.network_interface_id (NULL: allocated but not
--     associated): the elastic IP is 1:1 NAT to that interface's private_ip, on the host of the
--     interface's instance. The public pool's router is the gateway setting
--     network.public_gateway (default: the first host address of network.public_pool).
--   * vpn_connections (state <> 'deleted'): outside_ip (our end, from the same public pool),
--     psk, the customer gateway's customer_gateways.ip_address (their end), the local side =
--     vpcs.cidr_block of vpn_gateways.vpc_id (NULL: the gateway is detached, no traffic), the
--     remote side = vpn_connection_routes.destination of the connection; host_id = the host that
--     terminates the tunnel (IKEv2, aes256-sha256-modp2048; ESP aes256-sha256, PFS modp2048).
--     Every host with a port in the VPC routes the remote CIDRs to host_id; netctl moves the
--     connection from 'pending' to 'available' (and tunnel_status to 'UP'/'DOWN') once it has
--     set the tunnel up there.
-- Every change of any of these bumps netctl_versions.desired of the hosts concerned (the
-- triggers below, in the transaction of the change): netctl_bump() now also counts the host of
-- each live VPN connection of a VPC as one of that VPC's hosts.

-- A random id of 'prefix' in the form of nb_id_new(): prefix, '-', 17 hex digits.
CREATE FUNCTION network_new_id(prefix text) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT prefix || '-' || substr(md5(gen_random_uuid()::text), 1, 17)
$$;

-- --- internet gateways ---------------------------------------------------------------------

CREATE TABLE internet_gateways (
    id          text PRIMARY KEY CHECK (id ~ '^igw-[0-9a-f]{17}$'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    vpc_id      text UNIQUE REFERENCES vpcs (id),  -- NULL: detached; one gateway per VPC
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX internet_gateways_tenant ON internet_gateways (tenant_id);

-- --- route tables --------------------------------------------------------------------------

-- Each VPC has one main table (made with the VPC, by the trigger below, and deleted with it);
-- a subnet without an association of its own uses it. The main table's association has an id
-- of its own (main_association_id), shown by DescribeRouteTables as EC2 does.
CREATE TABLE route_tables (
    id                   text PRIMARY KEY CHECK (id ~ '^rtb-[0-9a-f]{17}$'),
    tenant_id            text NOT NULL REFERENCES tenants (id),
    vpc_id               text NOT NULL REFERENCES vpcs (id),
    main                 boolean NOT NULL DEFAULT false,
    main_association_id  text UNIQUE CHECK (main_association_id ~ '^rtbassoc-[0-9a-f]{17}$'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (main = (main_association_id IS NOT NULL))
);
CREATE UNIQUE INDEX route_tables_main ON route_tables (vpc_id) WHERE main;
CREATE INDEX route_tables_tenant ON route_tables (tenant_id);

-- A route to 'destination' through an internet gateway or a virtual private gateway. The
-- 'local' route of the VPC's CIDR is implicit (never stored, always first). No foreign key on
-- gateway_id: a route outlives its gateway's detachment or deletion, as a blackhole.
CREATE TABLE routes (
    route_table_id  text NOT NULL REFERENCES route_tables (id) ON DELETE CASCADE,
    destination     cidr NOT NULL CHECK (family(destination) = 4),
    gateway_id      text NOT NULL CHECK (gateway_id ~ '^(igw|vgw)-[0-9a-f]{17}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (route_table_id, destination)
);
CREATE INDEX routes_gateway ON routes (gateway_id);

-- A subnet's own table. Deleting the subnet deletes its association.
CREATE TABLE route_table_associations (
    id              text PRIMARY KEY CHECK (id ~ '^rtbassoc-[0-9a-f]{17}$'),
    route_table_id  text NOT NULL REFERENCES route_tables (id),
    subnet_id       text NOT NULL UNIQUE REFERENCES subnets (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX route_table_associations_table ON route_table_associations (route_table_id);

-- --- elastic IPs ---------------------------------------------------------------------------

-- An address of the operator's public pool (network.public_pool) held by a tenant. Associated
-- with one network interface (whose private_ip it is NATed to) or none; an interface has at
-- most one. A terminated instance's interface is deleted: its address stays allocated, idle.
CREATE TABLE addresses (
    allocation_id         text PRIMARY KEY CHECK (allocation_id ~ '^eipalloc-[0-9a-f]{17}$'),
    tenant_id             text NOT NULL REFERENCES tenants (id),
    public_ip             inet NOT NULL UNIQUE CHECK (family(public_ip) = 4 AND masklen(public_ip) = 32),
    network_interface_id  text UNIQUE REFERENCES network_interfaces (id),
    association_id        text UNIQUE CHECK (association_id ~ '^eipassoc-[0-9a-f]{17}$'),
    allocated_at          timestamptz NOT NULL DEFAULT now(),
    associated_at         timestamptz,
    CHECK ((network_interface_id IS NULL) = (association_id IS NULL))
);
CREATE INDEX addresses_tenant ON addresses (tenant_id);

-- --- VPN -----------------------------------------------------------------------------------

-- The VPC side of site-to-site VPN. At most one attached per VPC (as in EC2).
CREATE TABLE vpn_gateways (
    id               text PRIMARY KEY CHECK (id ~ '^vgw-[0-9a-f]{17}$'),
    tenant_id        text NOT NULL REFERENCES tenants (id),
    type             text NOT NULL DEFAULT 'ipsec.1' CHECK (type = 'ipsec.1'),
    zone             text REFERENCES zones (name),
    amazon_side_asn  bigint NOT NULL DEFAULT 64512 CHECK (amazon_side_asn BETWEEN 1 AND 4294967295),
    vpc_id           text UNIQUE REFERENCES vpcs (id),  -- NULL: detached
    state            text NOT NULL DEFAULT 'available' CHECK (state IN ('pending', 'available')),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vpn_gateways_tenant ON vpn_gateways (tenant_id);

-- The customer's side: their device's public address. An identical create (type, address, ASN
-- and device name) answers the existing gateway, as EC2 does.
CREATE TABLE customer_gateways (
    id           text PRIMARY KEY CHECK (id ~ '^cgw-[0-9a-f]{17}$'),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    ip_address   inet NOT NULL CHECK (family(ip_address) = 4 AND masklen(ip_address) = 32),
    bgp_asn      bigint NOT NULL DEFAULT 65000 CHECK (bgp_asn BETWEEN 1 AND 4294967295),
    type         text NOT NULL DEFAULT 'ipsec.1' CHECK (type = 'ipsec.1'),
    device_name  text NOT NULL DEFAULT '' CHECK (length(device_name) <= 255),
    state        text NOT NULL DEFAULT 'available' CHECK (state IN ('pending', 'available')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, type, ip_address, bgp_asn, device_name)
);

-- One IPsec tunnel between a customer gateway and a virtual private gateway. Its outside
-- address comes from the public pool, like an elastic IP (under the same advisory lock), and is
-- unique among live connections. A deleted connection stays, in state 'deleted', for EC2's
-- DescribeVpnConnections (an hour) and the 'deleted' waiter; it holds no address then.
-- host_id: the host that terminates the tunnel, the 'up' host with the lowest id when the
-- connection was made (NULL when there was none: the tunnel waits for an operator).
CREATE TABLE vpn_connections (
    id                     text PRIMARY KEY CHECK (id ~ '^vpn-[0-9a-f]{17}$'),
    tenant_id              text NOT NULL REFERENCES tenants (id),
    type                   text NOT NULL DEFAULT 'ipsec.1' CHECK (type = 'ipsec.1'),
    vpn_gateway_id         text NOT NULL REFERENCES vpn_gateways (id) ON DELETE CASCADE,
    customer_gateway_id    text NOT NULL REFERENCES customer_gateways (id) ON DELETE CASCADE,
    outside_ip             inet NOT NULL CHECK (family(outside_ip) = 4 AND masklen(outside_ip) = 32),
    psk                    text NOT NULL CHECK (psk ~ '^[A-Za-z1-9._][A-Za-z0-9._]{7,63}$'),
    static_routes_only     boolean NOT NULL DEFAULT true,
    state                  text NOT NULL DEFAULT 'pending'
                           CHECK (state IN ('pending', 'available', 'deleting', 'deleted')),
    host_id                text REFERENCES hosts (id) ON DELETE SET NULL,
    -- The tunnel as the terminating host last saw it (EC2's vgwTelemetry); netctl writes it.
    tunnel_status          text NOT NULL DEFAULT 'DOWN' CHECK (tunnel_status IN ('UP', 'DOWN')),
    tunnel_status_at       timestamptz NOT NULL DEFAULT now(),
    tunnel_status_message  text NOT NULL DEFAULT '',
    created_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
);
CREATE UNIQUE INDEX vpn_connections_outside_ip ON vpn_connections (outside_ip)
    WHERE state <> 'deleted';
CREATE INDEX vpn_connections_tenant ON vpn_connections (tenant_id);
CREATE INDEX vpn_connections_gateway ON vpn_connections (vpn_gateway_id);
CREATE INDEX vpn_connections_customer ON vpn_connections (customer_gateway_id);

-- The customer's networks behind a connection (static routing): traffic from the VPC to these
-- goes through the tunnel.
CREATE TABLE vpn_connection_routes (
    vpn_connection_id  text NOT NULL REFERENCES vpn_connections (id) ON DELETE CASCADE,
    destination        cidr NOT NULL CHECK (family(destination) = 4),
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vpn_connection_id, destination)
);

-- --- which hosts must change -------------------------------------------------------------

-- As in 0007, plus: the host terminating a live VPN connection of VPC 'p_vpc' (its gateway
-- attached to it) is one of the VPC's hosts, whatever instances it runs.
CREATE OR REPLACE FUNCTION netctl_bump(p_vpc text, p_host text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO netctl_versions (host_id)
    SELECT h.id FROM hosts h
    WHERE h.id = p_host
       OR h.id IN (SELECT i.host_id FROM network_interfaces n JOIN instances i
                   ON i.id = n.instance_id WHERE n.vpc_id = p_vpc AND i.host_id IS NOT NULL)
       OR h.id IN (SELECT c.host_id FROM vpn_connections c JOIN vpn_gateways g
                   ON g.id = c.vpn_gateway_id WHERE g.vpc_id = p_vpc AND c.state <> 'deleted'
                   AND c.host_id IS NOT NULL)
    ORDER BY h.id
    ON CONFLICT (host_id) DO UPDATE SET desired = netctl_versions.desired + 1;
$$;

-- A VPC gets its main route table when it is made, and loses it when it is deleted. A VPC with
-- an internet or VPN gateway attached, or with route tables besides the main one, cannot be
-- deleted (the error names what is left).
CREATE FUNCTION vpcs_route_table_make() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO route_tables (id, tenant_id, vpc_id, main, main_association_id)
    VALUES (network_new_id('rtb'), NEW.tenant_id, NEW.id, true, network_new_id('rtbassoc'));
    RETURN NULL;
END $$;
CREATE TRIGGER vpcs_main_route_table AFTER INSERT ON vpcs
    FOR EACH ROW EXECUTE FUNCTION vpcs_route_table_make();

CREATE FUNCTION vpcs_edge_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_what text;
BEGIN
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM internet_gateways WHERE vpc_id = OLD.id)
            THEN 'an internet gateway is attached'
        WHEN EXISTS (SELECT 1 FROM vpn_gateways WHERE vpc_id = OLD.id)
            THEN 'a VPN gateway is attached'
        WHEN EXISTS (SELECT 1 FROM route_tables WHERE vpc_id = OLD.id AND NOT main)
            THEN 'it has route tables besides the main one'
        END INTO v_what;
    IF v_what IS NOT NULL THEN
        RAISE EXCEPTION 'The vpc ''%'' has dependencies and cannot be deleted (%).', OLD.id, v_what
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    DELETE FROM tags WHERE tenant_id = OLD.tenant_id
        AND resource_id IN (SELECT id FROM route_tables WHERE vpc_id = OLD.id);
    DELETE FROM route_tables WHERE vpc_id = OLD.id;  -- its routes go with it
    RETURN OLD;
END $$;
CREATE TRIGGER vpcs_edge BEFORE DELETE ON vpcs
    FOR EACH ROW EXECUTE FUNCTION vpcs_edge_release();

-- The VPCs made before this migration get their main table too.
INSERT INTO route_tables (id, tenant_id, vpc_id, main, main_association_id)
SELECT network_new_id('rtb'), v.tenant_id, v.id, true, network_new_id('rtbassoc') FROM vpcs v;

-- An internet gateway attached or detached changes the flows of its VPC's hosts.
CREATE FUNCTION internet_gateways_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.vpc_id IS NOT NULL THEN
        PERFORM netctl_bump(OLD.vpc_id, NULL);
    END IF;
    IF NEW.vpc_id IS NOT NULL THEN
        PERFORM netctl_bump(NEW.vpc_id, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER internet_gateways_netctl AFTER UPDATE OF vpc_id ON internet_gateways
    FOR EACH ROW WHEN (OLD.vpc_id IS DISTINCT FROM NEW.vpc_id)
    EXECUTE FUNCTION internet_gateways_sync();

-- A route or an association added, changed or removed changes the flows of the table's VPC.
CREATE FUNCTION route_tables_member_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM netctl_bump(t.vpc_id, NULL) FROM route_tables t
        WHERE t.id IN (OLD.route_table_id, NEW.route_table_id);
    RETURN NULL;
END $$;
CREATE TRIGGER routes_netctl AFTER INSERT OR UPDATE OR DELETE ON routes
    FOR EACH ROW EXECUTE FUNCTION route_tables_member_sync();
CREATE TRIGGER route_table_associations_netctl
    AFTER INSERT OR UPDATE OR DELETE ON route_table_associations
    FOR EACH ROW EXECUTE FUNCTION route_tables_member_sync();

-- A VPN gateway attached or detached: the hosts of the VPC it leaves and of the one it joins,
-- and the hosts of its live connections.
CREATE FUNCTION vpn_gateways_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.vpc_id IS NOT NULL THEN
        PERFORM netctl_bump(OLD.vpc_id, NULL);
    END IF;
    IF NEW.vpc_id IS NOT NULL THEN
        PERFORM netctl_bump(NEW.vpc_id, NULL);
    END IF;
    PERFORM netctl_bump(NULL, c.host_id) FROM vpn_connections c
        WHERE c.vpn_gateway_id = NEW.id AND c.state <> 'deleted' AND c.host_id IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER vpn_gateways_netctl AFTER UPDATE OF vpc_id ON vpn_gateways
    FOR EACH ROW WHEN (OLD.vpc_id IS DISTINCT FROM NEW.vpc_id)
    EXECUTE FUNCTION vpn_gateways_sync();

-- A static route of a connection added or removed: the hosts of its VPC and its own host.
CREATE FUNCTION vpn_connection_routes_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM netctl_bump(g.vpc_id, c.host_id) FROM vpn_connections c
        JOIN vpn_gateways g ON g.id = c.vpn_gateway_id
        WHERE c.id = COALESCE(NEW.vpn_connection_id, OLD.vpn_connection_id)
          AND c.state <> 'deleted';
    RETURN NULL;
END $$;
CREATE TRIGGER vpn_connection_routes_netctl AFTER INSERT OR DELETE ON vpn_connection_routes
    FOR EACH ROW EXECUTE FUNCTION vpn_connection_routes_sync();

-- A network interface deleted (its instance terminated) gives its elastic IP back to the
-- tenant, unassociated; the update below meters and bumps as any disassociation does.
CREATE FUNCTION network_interfaces_release_address() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE addresses SET network_interface_id = NULL, association_id = NULL,
                         associated_at = NULL
        WHERE network_interface_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER network_interfaces_address BEFORE DELETE ON network_interfaces
    FOR EACH ROW EXECUTE FUNCTION network_interfaces_release_address();

-- --- usage events --------------------------------------------------------------------------

-- On/off meters: a row with active = true starts metering 'meter' for 'resource_id', the next
-- row of the same tenant, resource and meter with active = false stops it. nubo-billing turns
-- each on..off (or on..now) interval into seconds of usage of the meter, priced per hour below.
-- Written by triggers on the resources' tables, in the transaction of the change, so that no
-- code path can change a resource without its event.
--   eip-idle        an elastic IP allocated and not associated; resource = allocation id
--   eip-associated  an elastic IP associated with an interface;   resource = allocation id
--   vpn-connection  a VPN connection from its creation to its deletion; resource = its id
CREATE TABLE meter_events (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    tenant_id    text NOT NULL,
    resource_id  text NOT NULL,
    meter        text NOT NULL,
    sku          text NOT NULL DEFAULT '',
    active       boolean NOT NULL
);
CREATE INDEX meter_events_at ON meter_events (at);
CREATE INDEX meter_events_resource ON meter_events (resource_id, id);

-- An address's meter follows whether it is associated: allocating starts 'eip-idle',
-- associating stops it and starts 'eip-associated' (moving to another interface changes
-- nothing), disassociating does the reverse, releasing stops whichever runs. Associating or
-- disassociating also changes the flows of the interface's VPC.
CREATE FUNCTION addresses_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_old text;
    v_new text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        v_old := CASE WHEN OLD.network_interface_id IS NULL THEN 'eip-idle'
                      ELSE 'eip-associated' END;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        v_new := CASE WHEN NEW.network_interface_id IS NULL THEN 'eip-idle'
                      ELSE 'eip-associated' END;
    END IF;
    IF v_old IS DISTINCT FROM v_new THEN
        IF v_old IS NOT NULL THEN
            INSERT INTO meter_events (tenant_id, resource_id, meter, active)
            VALUES (OLD.tenant_id, OLD.allocation_id, v_old, false);
        END IF;
        IF v_new IS NOT NULL THEN
            INSERT INTO meter_events (tenant_id, resource_id, meter, active)
            VALUES (NEW.tenant_id, NEW.allocation_id, v_new, true);
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.network_interface_id IS DISTINCT FROM NEW.network_interface_id
    THEN
        PERFORM netctl_bump(n.vpc_id, i.host_id) FROM network_interfaces n
            LEFT JOIN instances i ON i.id = n.instance_id
            WHERE n.id IN (OLD.network_interface_id, NEW.network_interface_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER addresses_events AFTER INSERT OR UPDATE OR DELETE ON addresses
    FOR EACH ROW EXECUTE FUNCTION addresses_sync();

-- A connection's meter runs while it is not 'deleted'. Made, deleted or moved to another host,
-- it changes the flows of its VPC's hosts and of its host (the one it left, too).
CREATE FUNCTION vpn_connections_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_was boolean := TG_OP <> 'INSERT' AND OLD.state <> 'deleted';
    v_is boolean := TG_OP <> 'DELETE' AND NEW.state <> 'deleted';
BEGIN
    IF v_was AND NOT v_is THEN
        INSERT INTO meter_events (tenant_id, resource_id, meter, active)
        VALUES (OLD.tenant_id, OLD.id, 'vpn-connection', false);
    ELSIF v_is AND NOT v_was THEN
        INSERT INTO meter_events (tenant_id, resource_id, meter, active)
        VALUES (NEW.tenant_id, NEW.id, 'vpn-connection', true);
    END IF;
    IF v_was IS DISTINCT FROM v_is OR (TG_OP = 'UPDATE' AND v_is
                                       AND OLD.host_id IS DISTINCT FROM NEW.host_id) THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM netctl_bump(g.vpc_id, OLD.host_id) FROM vpn_gateways g
                WHERE g.id = OLD.vpn_gateway_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM netctl_bump(g.vpc_id, NEW.host_id) FROM vpn_gateways g
                WHERE g.id = NEW.vpn_gateway_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER vpn_connections_events AFTER INSERT OR UPDATE OR DELETE ON vpn_connections
    FOR EACH ROW EXECUTE FUNCTION vpn_connections_sync();

-- EC2-like prices in the default plan: every public IPv4 address, idle or in use, is charged
-- by the hour; a VPN connection too.
INSERT INTO plan_prices (plan_id, meter, sku, unit, unit_quantity, price_micros) VALUES
    ('plan-default-1', 'eip-idle', '', 'hour', 3600, 5000),
    ('plan-default-1', 'eip-associated', '', 'hour', 3600, 5000),
    ('plan-default-1', 'vpn-connection', '', 'hour', 3600, 50000);

-- --- for the data plane ----------------------------------------------------------------------

-- The routes in effect for each subnet: those of its own table, or else of its VPC's main
-- table, with the implicit 'local' route of the VPC's CIDR. 'state' is 'blackhole' for a route
-- whose gateway is not attached to the VPC (no traffic takes it).
CREATE VIEW subnet_effective_routes AS
    WITH t AS (
        SELECT s.id AS subnet_id, s.vpc_id, v.cidr_block AS vpc_cidr,
               COALESCE(a.route_table_id, m.id) AS route_table_id
        FROM subnets s
        JOIN vpcs v ON v.id = s.vpc_id
        LEFT JOIN route_table_associations a ON a.subnet_id = s.id
        LEFT JOIN route_tables m ON m.vpc_id = s.vpc_id AND m.main
    )
    SELECT t.subnet_id, t.vpc_id, t.route_table_id, t.vpc_cidr AS destination,
           'local'::text AS gateway_id, 'active'::text AS state
    FROM t
    UNION ALL
    SELECT t.subnet_id, t.vpc_id, t.route_table_id, r.destination, r.gateway_id,
           CASE WHEN EXISTS (SELECT 1 FROM internet_gateways i
                             WHERE i.id = r.gateway_id AND i.vpc_id = t.vpc_id)
                  OR EXISTS (SELECT 1 FROM vpn_gateways g
                             WHERE g.id = r.gateway_id AND g.vpc_id = t.vpc_id)
                THEN 'active' ELSE 'blackhole' END
    FROM t JOIN routes r ON r.route_table_id = t.route_table_id;
