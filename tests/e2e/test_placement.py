"""End-to-end: placement through the EC2 API with boto3, a real nubo-gateway and a real
nubo-scheduler over simulated hosts made by SQL: placement groups (CreatePlacementGroup,
DescribePlacementGroups, DeletePlacementGroup and the spread, cluster and partition strategies),
availability zones, dedicated tenancy, and an impossible launch ending in 'error' with the
scheduler's explanation as its StateReason. Prints TAP.
Run: /usr/bin/python3 tests/e2e/test_placement.py"""

import sys

sys.dont_write_bytecode = True

import nubo_env  # noqa: E402
import sched_env  # noqa: E402
from nubo_env import SkipTest, check, check_eq, client_error  # noqa: E402

tap = nubo_env.Tap(__file__, fixture=sched_env.SchedEnv)
S = {}

HOSTS_PER_ZONE = 4


def instances_of(out):
    return [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]


def tenant(env):
    return env.tenant("placement-a")


def hosts(env):
    """Four simulated hosts in each of nubo-1a and nubo-1b, made once (nubo-1c has none)."""
    if "hosts" not in S:
        S["hosts"] = {z: [env.add_host(z) for _ in range(HOSTS_PER_ZONE)]
                      for z in ("nubo-1a", "nubo-1b")}
    return S["hosts"]


def run(env, ec2, count=1, **placement):
    """RunInstances with 'placement' as its Placement; returns the instance ids. Skips the test
    when the gateway does not take or does not record Placement yet."""
    from botocore.exceptions import ClientError

    hosts(env)
    try:
        r = ec2.run_instances(ImageId=env.image(), InstanceType="t3.micro", MinCount=count,
                              MaxCount=count, Placement=placement)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "UnknownParameter":
            raise SkipTest("RunInstances does not take Placement yet") from e
        raise
    ids = [i["InstanceId"] for i in r["Instances"]]
    if "GroupName" in placement and env.instance_row(ids[0], "placement_group_id")[0] is None:
        raise SkipTest("RunInstances does not record Placement.GroupName yet")
    if placement.get("Tenancy") == "dedicated" and \
            env.instance_row(ids[0], "tenancy")[0] != "dedicated":
        raise SkipTest("RunInstances does not record Placement.Tenancy yet")
    return ids


@tap.test
def test_placement_group_crud(env):
    ec2 = env.ec2(tenant(env))
    r = ec2.create_placement_group(GroupName="web-spread", Strategy="spread", TagSpecifications=[
        {"ResourceType": "placement-group", "Tags": [{"Key": "team", "Value": "web"}]}])
    check_eq(r.get("PlacementGroup", {}).get("GroupName"), "web-spread", "created group name")
    ec2.create_placement_group(GroupName="db-part", Strategy="partition", PartitionCount=3)
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    groups = {g["GroupName"]: g for g in ec2.describe_placement_groups()["PlacementGroups"]}
    check_eq(sorted(groups), ["db-part", "hpc", "web-spread"], "groups listed")
    check_eq((groups["db-part"]["Strategy"], groups["db-part"].get("PartitionCount")),
             ("partition", 3), "partition group")
    check_eq(groups["web-spread"]["State"], "available", "state")
    check(groups["hpc"]["GroupId"].startswith("pg-"), "group id", groups["hpc"])
    check_eq({t["Key"]: t["Value"] for t in groups["web-spread"].get("Tags", [])},
             {"team": "web"}, "tags")
    got = ec2.describe_placement_groups(Filters=[{"Name": "strategy", "Values": ["cluster"]}])
    check_eq([g["GroupName"] for g in got["PlacementGroups"]], ["hpc"], "strategy filter")
    got = ec2.describe_placement_groups(GroupIds=[groups["hpc"]["GroupId"]])
    check_eq([g["GroupName"] for g in got["PlacementGroups"]], ["hpc"], "by id")
    code, status, _, _ = client_error(ec2.create_placement_group, GroupName="hpc",
                                      Strategy="cluster")
    check_eq((code, status), ("InvalidPlacementGroup.Duplicate", 400), "duplicate name")
    code, _, _, _ = client_error(ec2.create_placement_group, GroupName="x", Strategy="bogus")
    check_eq(code, "InvalidParameterValue", "bad strategy")
    code, _, _, _ = client_error(ec2.describe_placement_groups, GroupNames=["nope"])
    check_eq(code, "InvalidPlacementGroup.Unknown", "unknown group")
    code, _, _, _ = client_error(ec2.delete_placement_group, GroupName="nope")
    check_eq(code, "InvalidPlacementGroup.Unknown", "delete unknown group")
    # Another tenant sees none of them.
    other = env.ec2(env.tenant("placement-b"))
    check_eq(other.describe_placement_groups()["PlacementGroups"], [], "tenant isolation")
    code, _, _, _ = client_error(other.delete_placement_group, GroupName="hpc")
    check_eq(code, "InvalidPlacementGroup.Unknown", "other tenant's delete")
    ec2.delete_placement_group(GroupName="hpc")
    names = [g["GroupName"] for g in ec2.describe_placement_groups()["PlacementGroups"]]
    check("hpc" not in names, "deleted group still listed", names)


@tap.test
def test_spread_group_distinct_hosts(env):
    ec2 = env.ec2(tenant(env))
    ids = run(env, ec2, count=3, GroupName="web-spread", AvailabilityZone="nubo-1a")
    states = env.wait_settled(ec2, ids)
    check(all(s == "running" for s in states.values()), "not all running", states)
    placed = [env.host_of(i) for i in ids]
    check_eq(len(set(placed)), 3, f"distinct hosts of a spread group ({placed})")
    S["spread_ids"] = ids


@tap.test
def test_delete_group_in_use(env):
    ec2 = env.ec2(tenant(env))
    if "spread_ids" not in S:
        raise SkipTest("needs the spread group's instances")
    code, status, _, _ = client_error(ec2.delete_placement_group, GroupName="web-spread")
    check_eq((code, status), ("InvalidPlacementGroup.InUse", 400), "delete a group in use")
    ec2.terminate_instances(InstanceIds=S["spread_ids"])
    env.wait_settled(ec2, S["spread_ids"], states=("terminated",))
    ec2.delete_placement_group(GroupName="web-spread")


@tap.test
def test_cluster_group_same_host(env):
    ec2 = env.ec2(tenant(env))
    ec2.create_placement_group(GroupName="tight", Strategy="cluster")
    ids = run(env, ec2, count=3, GroupName="tight", AvailabilityZone="nubo-1a")
    env.wait_settled(ec2, ids)
    ids += run(env, ec2, count=1, GroupName="tight", AvailabilityZone="nubo-1a")
    env.wait_settled(ec2, ids)
    placed = {env.host_of(i) for i in ids}
    check_eq(len(placed), 1, f"hosts of a cluster group ({placed})")


@tap.test
def test_partition_group_disjoint(env):
    ec2 = env.ec2(tenant(env))
    ids = run(env, ec2, count=6, GroupName="db-part", AvailabilityZone="nubo-1b")
    env.wait_settled(ec2, ids)
    by_partition = {}
    for i in ids:
        host, part = env.instance_row(i, "host_id, partition_number")
        check(part is not None, f"instance {i} got no partition number")
        by_partition.setdefault(part, set()).add(host)
    check_eq(sorted(by_partition), ["1", "2", "3"], "partitions used")
    seen = set()
    for part, hs in by_partition.items():
        check(not (hs & seen), f"partition {part} shares hosts with another", by_partition)
        seen |= hs
    # An explicit partition number is kept.
    more = run(env, ec2, count=1, GroupName="db-part", AvailabilityZone="nubo-1b",
               PartitionNumber=2)
    env.wait_settled(ec2, more)
    host, part = env.instance_row(more[0], "host_id, partition_number")
    check_eq(part, "2", "requested partition")
    check(host not in by_partition["1"] | by_partition["3"],
          "partition 2 instance landed on another partition's host", host, by_partition)


@tap.test
def test_availability_zone_respected(env):
    ec2 = env.ec2(tenant(env))
    zones = hosts(env)
    for zone in ("nubo-1a", "nubo-1b"):
        ids = run(env, ec2, count=4, AvailabilityZone=zone)
        env.wait_settled(ec2, ids)
        for i in ids:
            check(env.host_of(i) in zones[zone], f"{i} asked for {zone}, landed elsewhere")
        d = instances_of(ec2.describe_instances(InstanceIds=ids))
        check_eq({x["Placement"]["AvailabilityZone"] for x in d}, {zone}, "described zone")
        ec2.terminate_instances(InstanceIds=ids)


@tap.test
def test_dedicated_tenancy(env):
    c = tenant(env)
    ec2 = env.ec2(c)
    hosts(env)
    dedicated = env.add_host("nubo-1a", dedicated_tenant=c.tenant_id, name="dedicated-a")
    ids = run(env, ec2, count=2, AvailabilityZone="nubo-1a", Tenancy="dedicated")
    env.wait_settled(ec2, ids)
    for i in ids:
        check_eq(env.host_of(i), dedicated, f"host of dedicated instance {i}")
    # Another tenant's instances never land on it.
    other = env.ec2(env.tenant("placement-b"))
    theirs = run(env, other, count=4, AvailabilityZone="nubo-1a")
    env.wait_settled(other, theirs)
    for i in theirs:
        check(env.host_of(i) != dedicated, f"{i} of another tenant on a dedicated host")
    other.terminate_instances(InstanceIds=theirs)


@tap.test
def test_impossible_request_explained(env):
    ec2 = env.ec2(tenant(env))
    ids = run(env, ec2, count=1, AvailabilityZone="nubo-1c")  # a zone without hosts
    states = env.wait_settled(ec2, ids, states=("error",))
    check_eq(list(states.values()), ["error"], "state of an unplaceable instance")
    d = instances_of(ec2.describe_instances(InstanceIds=ids))
    reason = d[0].get("StateReason", {})
    check_eq(reason.get("Code"), "Server.InsufficientInstanceCapacity", "StateReason code")
    msg = reason.get("Message", "")
    check("no valid host for t3.micro" in msg and "hosts not in nubo-1c" in msg,
          "StateReason message does not explain", msg)


if __name__ == "__main__":
    tap.main()
