-- Tenant networks, data plane (issue 7): what nubo-netctl on each host needs beyond 0007/0008.
--
-- A host's tunnel address is where the other hosts send its networks' VXLAN traffic. nubo-netctl
-- reports it with each fetch of the desired state (GET /internal/v1/network?tunnel_ip=...); a
-- new or changed address bumps the version of every host sharing a VPC with it, so that they
-- add (or move) their tunnel to it.
ALTER TABLE hosts ADD COLUMN tunnel_ip inet CHECK (tunnel_ip IS NULL OR family(tunnel_ip) = 4);

-- The last apply's outcome as nubo-netctl reported it (netctl_versions.applied/last_error are
-- from 0007): how many flows the host has and how many of its ports were not plugged yet.
ALTER TABLE netctl_versions ADD COLUMN flows integer;
ALTER TABLE netctl_versions ADD COLUMN ports_missing integer;
