-- Tenant networks (issue 7, first slice): VPCs, subnets, security groups, network interfaces
-- with their addresses, and the desired state nubo-netctl turns into Open vSwitch flows.
--
-- A VPC is one isolated layer-2/3 network of one tenant, whatever its CIDR (two tenants may use
-- the same one): on the wire it is a segment, a VLAN tag on each host's integration bridge and
-- a VXLAN key between hosts (vpcs.segment). Subnets carve the VPC's CIDR per availability zone.
-- An instance launched into a subnet gets a network interface: a MAC and a private IPv4 address
-- from the subnet (the first four and the last address are reserved, as in EC2), and the
-- security groups that filter its traffic (stateful, with connection tracking).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE vpcs (
    id          text PRIMARY KEY CHECK (id ~ '^vpc-[0-9a-f]{17}$'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    cidr_block  cidr NOT NULL CHECK (family(cidr_block) = 4 AND masklen(cidr_block) BETWEEN 16 AND 28),
    -- The lowest segment no other VPC holds, chosen by CreateVpc under an advisory lock, so
    -- that a deleted VPC's segment is used again (a sequence would run out after 3,901 VPCs
    -- ever made).
    segment     integer NOT NULL UNIQUE CHECK (segment BETWEEN 100 AND 4000),
    state       text NOT NULL DEFAULT 'available' CHECK (state IN ('pending', 'available')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vpcs_tenant ON vpcs (tenant_id);

CREATE TABLE subnets (
    id          text PRIMARY KEY CHECK (id ~ '^subnet-[0-9a-f]{17}$'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    vpc_id      text NOT NULL REFERENCES vpcs (id),
    zone        text NOT NULL REFERENCES zones (name),
    cidr_block  cidr NOT NULL CHECK (family(cidr_block) = 4 AND masklen(cidr_block) BETWEEN 16 AND 28),
    state       text NOT NULL DEFAULT 'available' CHECK (state IN ('pending', 'available')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Subnets of one VPC never overlap (CreateSubnet answers InvalidSubnet.Conflict).
    EXCLUDE USING gist (vpc_id WITH =, cidr_block inet_ops WITH &&)
);
CREATE INDEX subnets_tenant ON subnets (tenant_id);

CREATE TABLE security_groups (
    id          text PRIMARY KEY CHECK (id ~ '^sg-[0-9a-f]{17}$'),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    vpc_id      text NOT NULL REFERENCES vpcs (id),
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vpc_id, name)
);
CREATE INDEX security_groups_tenant ON security_groups (tenant_id);

-- One permission of a group: traffic in ('ingress') or out ('egress') with a protocol and a
-- port range, from/to either a CIDR or the members of another group of the same VPC.
CREATE TABLE security_group_rules (
    id           text PRIMARY KEY CHECK (id ~ '^sgr-[0-9a-f]{17}$'),
    group_id     text NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    direction    text NOT NULL CHECK (direction IN ('ingress', 'egress')),
    protocol     text NOT NULL CHECK (protocol IN ('-1', 'tcp', 'udp', 'icmp')),
    from_port    integer NOT NULL DEFAULT -1 CHECK (from_port BETWEEN -1 AND 65535),
    to_port      integer NOT NULL DEFAULT -1 CHECK (to_port BETWEEN -1 AND 65535),
    cidr         cidr CHECK (cidr IS NULL OR family(cidr) = 4),
    ref_group_id text REFERENCES security_groups (id),
    description  text NOT NULL DEFAULT '',
    CHECK ((cidr IS NULL) <> (ref_group_id IS NULL)),
    CHECK (protocol IN ('-1', 'icmp') OR (from_port >= 0 AND to_port >= from_port))
);
CREATE INDEX security_group_rules_group ON security_group_rules (group_id);
CREATE UNIQUE INDEX security_group_rules_unique ON security_group_rules
    (group_id, direction, protocol, from_port, to_port, COALESCE(cidr::text, ''),
     COALESCE(ref_group_id, ''));

CREATE TABLE network_interfaces (
    id           text PRIMARY KEY CHECK (id ~ '^eni-[0-9a-f]{17}$'),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    vpc_id       text NOT NULL REFERENCES vpcs (id),
    subnet_id    text NOT NULL REFERENCES subnets (id),
    instance_id  text REFERENCES instances (id),
    device_index integer NOT NULL DEFAULT 0,
    mac_address  macaddr NOT NULL UNIQUE,
    private_ip   inet NOT NULL,
    state        text NOT NULL DEFAULT 'in-use' CHECK (state IN ('available', 'in-use')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subnet_id, private_ip)
);
CREATE INDEX network_interfaces_instance ON network_interfaces (instance_id);

CREATE TABLE network_interface_groups (
    interface_id text NOT NULL REFERENCES network_interfaces (id) ON DELETE CASCADE,
    group_id     text NOT NULL REFERENCES security_groups (id),
    PRIMARY KEY (interface_id, group_id)
);
CREATE INDEX network_interface_groups_group ON network_interface_groups (group_id);

-- Every change of what a host's flows must be bumps its version (the gateway, in the
-- transaction of the change); nubo-netctl applies the desired state of each host whose version
-- is above what it last applied there, and records that.
CREATE TABLE netctl_versions (
    host_id  text PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    desired  bigint NOT NULL DEFAULT 1,
    applied  bigint NOT NULL DEFAULT 0,
    applied_at timestamptz,
    last_error text
);

-- Adds one to the desired version of every host with a port in VPC 'p_vpc' and of 'p_host'
-- (NULL: none): what their flows must be has changed. Hosts that no longer exist are skipped.
CREATE FUNCTION netctl_bump(p_vpc text, p_host text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO netctl_versions (host_id)
    SELECT h.id FROM hosts h
    WHERE h.id = p_host
       OR h.id IN (SELECT i.host_id FROM network_interfaces n JOIN instances i
                   ON i.id = n.instance_id WHERE n.vpc_id = p_vpc AND i.host_id IS NOT NULL)
    ORDER BY h.id
    ON CONFLICT (host_id) DO UPDATE SET desired = netctl_versions.desired + 1;
$$;

-- Whoever moves an instance (the gateway, the scheduler, the host-failure handling): a
-- terminated instance's interfaces are deleted, which frees their addresses; an instance that
-- lands on, leaves or dies on a host changes the ports of its VPC, so every host of the VPC
-- and the host it left get a new version.
CREATE FUNCTION instances_network_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_vpc text;
BEGIN
    IF NEW.state = 'terminated' AND OLD.state <> 'terminated' THEN
        WITH d AS (DELETE FROM network_interfaces WHERE instance_id = NEW.id RETURNING vpc_id)
        SELECT min(vpc_id) INTO v_vpc FROM d;
        IF v_vpc IS NOT NULL AND (OLD.host_id IS NOT NULL OR NEW.host_id IS NOT NULL) THEN
            PERFORM netctl_bump(v_vpc, OLD.host_id);
            IF NEW.host_id IS DISTINCT FROM OLD.host_id THEN
                PERFORM netctl_bump(v_vpc, NEW.host_id);
            END IF;
        END IF;
    ELSIF NEW.host_id IS DISTINCT FROM OLD.host_id THEN
        SELECT vpc_id INTO v_vpc FROM network_interfaces WHERE instance_id = NEW.id LIMIT 1;
        IF v_vpc IS NOT NULL THEN
            PERFORM netctl_bump(v_vpc, OLD.host_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER instances_network AFTER UPDATE OF state, host_id ON instances
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.host_id IS DISTINCT FROM NEW.host_id)
    EXECUTE FUNCTION instances_network_sync();

-- A rule added or removed changes the flows of every host with a port in the group's VPC (the
-- group's members, and the members of groups whose rules refer to it).
CREATE FUNCTION security_group_rules_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM netctl_bump(g.vpc_id, NULL) FROM security_groups g
        WHERE g.id = COALESCE(NEW.group_id, OLD.group_id);
    RETURN NULL;
END $$;
CREATE TRIGGER security_group_rules_netctl AFTER INSERT OR DELETE ON security_group_rules
    FOR EACH ROW EXECUTE FUNCTION security_group_rules_sync();
