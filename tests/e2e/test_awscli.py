"""End-to-end: Debian's AWS CLI (/usr/bin/aws) against a real nubo-gateway, as a member of a
non-admin tenant. Prints TAP. Run: /usr/bin/python3 tests/e2e/test_awscli.py"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import nubo_env  # noqa: E402
from nubo_env import SkipTest, TestFailure, check, check_eq  # noqa: E402

AWS = "/usr/bin/aws"
SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSL = shutil.which("openssl")

tap = nubo_env.Tap(__file__)
S = {}  # state shared by the tests, in order


class Aws:
    """/usr/bin/aws ec2 ... for one tenant, with a clean configuration."""

    def __init__(self, env, creds):
        self.env = env
        self.creds = creds
        self.penv = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(env.tmp / "home"),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": creds.key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret,
            "AWS_CONFIG_FILE": str(env.tmp / "aws-empty"),
            "AWS_SHARED_CREDENTIALS_FILE": str(env.tmp / "aws-empty"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "NO_PROXY": "127.0.0.1",
        }

    def run(self, *args):
        cmd = [AWS, "ec2", *args, "--endpoint-url", self.env.endpoint, "--region", "nubo-1",
               "--output", "json", "--cli-read-timeout", "30", "--cli-connect-timeout", "5"]
        r = subprocess.run(cmd, env=self.penv, capture_output=True, text=True, timeout=60)
        return cmd, r

    @staticmethod
    def _show(cmd, r):
        return (f"$ {' '.join(cmd)}\nexit {r.returncode}\nstdout: {r.stdout[:3000]}\n"
                f"stderr: {r.stderr[:3000]}")

    def ok(self, *args):
        """Runs the command, which must succeed; returns its JSON output ({} if none)."""
        cmd, r = self.run(*args)
        if r.returncode != 0:
            raise TestFailure("aws failed\n" + self._show(cmd, r))
        try:
            return json.loads(r.stdout) if r.stdout.strip() else {}
        except json.JSONDecodeError as e:
            raise TestFailure(f"aws printed no JSON ({e})\n" + self._show(cmd, r)) from None

    def err(self, code, *args):
        """Runs the command, which must fail with EC2 error 'code'."""
        cmd, r = self.run(*args)
        want = f"An error occurred ({code})"
        if r.returncode == 0 or want not in r.stderr:
            raise TestFailure(f"expected error {code}\n" + self._show(cmd, r))
        return r.stderr


def cli(env):
    if "aws" not in S:
        S["aws"] = Aws(env, env.tenant("cli-tenant"))
    return S["aws"]


def need(key):
    if key not in S:
        raise TestFailure(f"needs '{key}' from an earlier test, which failed")
    return S[key]


def instances_of(out):
    """Instances of a DescribeInstances output, in order."""
    return [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]


def tags_of(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def ssh_keygen(*args, input=None):
    r = subprocess.run([SSH_KEYGEN, *args], capture_output=True, text=True, timeout=30,
                       input=input)
    check(r.returncode == 0, f"ssh-keygen {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def pipe(cmds, data):
    """Runs commands as a pipeline over bytes 'data'; returns the last one's stdout (text)."""
    for cmd in cmds:
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=30)
        check(r.returncode == 0, f"{' '.join(cmd)} failed: {r.stderr.decode(errors='replace')}")
        data = r.stdout
    return data.decode().strip()


def same_key(a, b):
    """OpenSSH public key lines equal, comments aside."""
    return a.split()[:2] == b.split()[:2]


# --- catalogue -------------------------------------------------------------------------------


@tap.test
def test_describe_regions(env):
    aws = cli(env)
    out = aws.ok("describe-regions")
    names = [r["RegionName"] for r in out["Regions"]]
    check_eq(names, ["nubo-1"], "regions")
    check(out["Regions"][0].get("Endpoint"), "region has no Endpoint", out)
    out = aws.ok("describe-regions", "--region-names", "nubo-1")
    check_eq([r["RegionName"] for r in out["Regions"]], ["nubo-1"], "--region-names nubo-1")
    out = aws.ok("describe-regions", "--filters", "Name=region-name,Values=elsewhere")
    check_eq(out["Regions"], [], "region-name filter that matches nothing")


@tap.test
def test_describe_availability_zones(env):
    out = cli(env).ok("describe-availability-zones")
    zones = out["AvailabilityZones"]
    check_eq([z["ZoneName"] for z in zones], ["nubo-1a"], "zone names")
    check_eq(zones[0]["State"], "available", "zone state")
    check_eq(zones[0]["RegionName"], "nubo-1", "zone region")
    check(zones[0].get("ZoneId"), "zone has no ZoneId", zones)


@tap.test
def test_describe_instance_types(env):
    aws = cli(env)
    out = aws.ok("describe-instance-types")
    types = {t["InstanceType"]: t for t in out["InstanceTypes"]}
    for name in ("t3.nano", "t3.micro", "t3.small", "m5.large", "m5d.large"):
        check(name in types, f"{name} missing from describe-instance-types", sorted(types))
    check_eq(len(out["InstanceTypes"]), len(types), "number of types (duplicates?)")

    out = aws.ok("describe-instance-types", "--instance-types", "t3.micro")
    check_eq([t["InstanceType"] for t in out["InstanceTypes"]], ["t3.micro"], "--instance-types")
    t = out["InstanceTypes"][0]
    check_eq(t["VCpuInfo"]["DefaultVCpus"], 1, "t3.micro vCPUs")
    check_eq(t["MemoryInfo"]["SizeInMiB"], 1024, "t3.micro memory")
    check_eq(t["ProcessorInfo"]["SupportedArchitectures"], ["x86_64"], "architectures")

    out = aws.ok("describe-instance-types", "--filters", "Name=vcpu-info.default-vcpus,Values=2")
    got = sorted(t["InstanceType"] for t in out["InstanceTypes"])
    want = sorted(n for n, t in types.items() if t["VCpuInfo"]["DefaultVCpus"] == 2)
    check(want, "no 2-vCPU type in the catalogue")
    check_eq(got, want, "types with vcpu-info.default-vcpus=2")

    m5d = types["m5d.large"]
    check_eq(m5d.get("InstanceStorageSupported"), True, "m5d.large InstanceStorageSupported")
    check_eq(m5d["InstanceStorageInfo"]["TotalSizeInGB"], 75, "m5d.large local storage")

    # The CLI's own pagination over MaxResults/NextToken.
    out = aws.ok("describe-instance-types", "--page-size", "5")
    check_eq(sorted(t["InstanceType"] for t in out["InstanceTypes"]), sorted(types),
             "all types through --page-size 5")


# --- key pairs -------------------------------------------------------------------------------


@tap.test
def test_create_key_pair_ed25519(env):
    aws = cli(env)
    out = aws.ok("create-key-pair", "--key-name", "e2e-ed", "--key-type", "ed25519")
    check_eq(out.get("KeyName"), "e2e-ed", "KeyName")
    check(out.get("KeyPairId", "").startswith("key-"), "KeyPairId", out)
    material = out.get("KeyMaterial", "")
    check(material.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
          and material.rstrip().endswith("-----END OPENSSH PRIVATE KEY-----"),
          "KeyMaterial is not an OpenSSH private key", material[:200])
    S["ed"] = out
    desc = aws.ok("describe-key-pairs", "--key-names", "e2e-ed", "--include-public-key")
    check_eq(len(desc["KeyPairs"]), 1, "key pairs named e2e-ed")
    kp = desc["KeyPairs"][0]
    check_eq(kp["KeyPairId"], out["KeyPairId"], "KeyPairId round trip")
    check_eq(kp["KeyType"], "ed25519", "KeyType")
    check_eq(kp["KeyFingerprint"], out["KeyFingerprint"], "fingerprint create vs describe")
    check(kp.get("PublicKey", "").startswith("ssh-ed25519 "), "PublicKey", kp)
    if not SSH_KEYGEN:
        raise SkipTest("no ssh-keygen: private key not checked against the public key")
    path = env.tmp / "e2e-ed.pem"
    path.write_text(material if material.endswith("\n") else material + "\n")
    os.chmod(path, 0o600)
    pub = ssh_keygen("-y", "-f", str(path)).strip()
    check(same_key(pub, kp["PublicKey"]), "ssh-keygen -y of the private key differs from "
          "describe-key-pairs --include-public-key", f"ssh-keygen: {pub}",
          f"nubo:       {kp['PublicKey']}")
    # OpenSSH's SHA256 fingerprint (nubo and EC2 print it as bare base64).
    fp = ssh_keygen("-l", "-E", "sha256", "-f", str(path)).split()[1]
    check_eq(kp["KeyFingerprint"].removeprefix("SHA256:").rstrip("="),
             fp.removeprefix("SHA256:").rstrip("="), "ed25519 fingerprint vs ssh-keygen -l")


@tap.test
def test_create_key_pair_rsa(env):
    aws = cli(env)
    out = aws.ok("create-key-pair", "--key-name", "e2e-rsa", "--key-type", "rsa")
    material = out.get("KeyMaterial", "")
    check(material.startswith("-----BEGIN RSA PRIVATE KEY-----")
          and material.rstrip().endswith("-----END RSA PRIVATE KEY-----"),
          "KeyMaterial is not a PEM RSA private key", material[:200])
    fpr = out.get("KeyFingerprint", "")
    check(len(fpr) == 59 and fpr.count(":") == 19, "RSA fingerprint is not 20 colon-separated "
          "bytes (SHA-1 of the PKCS#8 key, as EC2)", fpr)
    desc = aws.ok("describe-key-pairs", "--key-pair-ids", out["KeyPairId"],
                  "--include-public-key")
    kp = desc["KeyPairs"][0]
    check_eq(kp["KeyName"], "e2e-rsa", "KeyName by id")
    check_eq(kp["KeyType"], "rsa", "KeyType")
    S["rsa"] = out
    if not SSH_KEYGEN:
        raise SkipTest("no ssh-keygen: private key not checked against the public key")
    path = env.tmp / "e2e-rsa.pem"
    path.write_text(material if material.endswith("\n") else material + "\n")
    os.chmod(path, 0o600)
    pub = ssh_keygen("-y", "-f", str(path)).strip()
    check(same_key(pub, kp["PublicKey"]), "ssh-keygen -y of the RSA key differs from its "
          "PublicKey", f"ssh-keygen: {pub}", f"nubo:       {kp['PublicKey']}")
    if OPENSSL:
        want = pipe([[OPENSSL, "pkcs8", "-topk8", "-nocrypt", "-outform", "DER"],
                     [OPENSSL, "dgst", "-sha1", "-c", "-r"]], path.read_bytes()).split()[0]
        check_eq(fpr.lower().replace(":", ""), want.lower().replace(":", ""),
                 "RSA fingerprint vs SHA-1 of the PKCS#8 DER key")


@tap.test
def test_create_key_pair_duplicate(env):
    need("ed")
    cli(env).err("InvalidKeyPair.Duplicate", "create-key-pair", "--key-name", "e2e-ed")


@tap.test
def test_import_key_pair(env):
    aws = cli(env)
    if not SSH_KEYGEN:
        raise SkipTest("no ssh-keygen to make a key to import")
    for kind in ("ed25519", "rsa"):
        path = env.tmp / f"imported-{kind}"
        args = ["-t", kind] + (["-b", "2048"] if kind == "rsa" else [])
        ssh_keygen(*args, "-N", "", "-q", "-C", f"e2e@{kind}", "-f", str(path))
        pub = Path(f"{path}.pub").read_text().strip()
        out = aws.ok("import-key-pair", "--key-name", f"e2e-imported-{kind}",
                     "--public-key-material", f"fileb://{path}.pub")
        S.setdefault("imported", []).append(f"e2e-imported-{kind}")
        check_eq(out.get("KeyName"), f"e2e-imported-{kind}", "KeyName")
        check(out.get("KeyPairId", "").startswith("key-"), "KeyPairId", out)
        desc = aws.ok("describe-key-pairs", "--key-names", f"e2e-imported-{kind}",
                      "--include-public-key")
        kp = desc["KeyPairs"][0]
        check_eq(kp["KeyPairId"], out["KeyPairId"], "KeyPairId round trip")
        check_eq(kp["KeyType"], kind, "KeyType")
        check(same_key(kp["PublicKey"], pub), "imported PublicKey differs", f"sent: {pub}",
              f"got:  {kp['PublicKey']}")
        if kind == "ed25519":
            fp = ssh_keygen("-l", "-E", "sha256", "-f", f"{path}.pub").split()[1]
            check_eq(out["KeyFingerprint"].removeprefix("SHA256:").rstrip("="),
                     fp.removeprefix("SHA256:").rstrip("="), "imported ed25519 fingerprint")
        elif OPENSSL:
            pkcs8 = ssh_keygen("-e", "-m", "PKCS8", "-f", f"{path}.pub")
            want = pipe([[OPENSSL, "pkey", "-pubin", "-outform", "DER"],
                         [OPENSSL, "dgst", "-md5", "-c", "-r"]], pkcs8.encode()).split()[0]
            fpr = out["KeyFingerprint"]
            check(len(fpr) == 47 and fpr.count(":") == 15, "imported RSA fingerprint is not 16 "
                  "colon-separated bytes (MD5, as EC2)", fpr)
            check_eq(fpr.lower().replace(":", ""), want.lower().replace(":", ""),
                     "imported RSA fingerprint vs MD5 of the DER public key (as EC2)")
    bad = env.tmp / "not-a-key.pub"
    bad.write_text("ssh-ed25519 AAAAnotreallyakey e2e\n")
    aws.err("InvalidKey.Format", "import-key-pair", "--key-name", "e2e-bad",
            "--public-key-material", f"fileb://{bad}")


@tap.test
def test_describe_and_delete_key_pairs(env):
    aws = cli(env)
    need("ed")
    rsa = need("rsa")
    out = aws.ok("describe-key-pairs")
    names = sorted(k["KeyName"] for k in out["KeyPairs"])
    want = sorted(["e2e-ed", "e2e-rsa"] + S.get("imported", []))
    check_eq(names, want, "all key pairs of the tenant")
    check(all("PublicKey" not in k for k in out["KeyPairs"]),
          "PublicKey shown without --include-public-key", out)
    out = aws.ok("describe-key-pairs", "--filters", "Name=key-type,Values=ed25519")
    check(all(k["KeyType"] == "ed25519" for k in out["KeyPairs"]) and
          "e2e-ed" in [k["KeyName"] for k in out["KeyPairs"]], "key-type filter", out)

    aws.ok("delete-key-pair", "--key-name", "e2e-ed")
    aws.err("InvalidKeyPair.NotFound", "describe-key-pairs", "--key-names", "e2e-ed")
    aws.ok("delete-key-pair", "--key-pair-id", rsa["KeyPairId"])
    aws.err("InvalidKeyPair.NotFound", "describe-key-pairs", "--key-pair-ids", rsa["KeyPairId"])
    out = aws.ok("describe-key-pairs")
    left = sorted(k["KeyName"] for k in out["KeyPairs"])
    check_eq(left, sorted(set(want) - {"e2e-ed", "e2e-rsa"}), "key pairs after the deletes")
    # EC2: deleting a name that does not exist succeeds.
    aws.ok("delete-key-pair", "--key-name", "e2e-ed")
    del S["ed"]


# --- instances -------------------------------------------------------------------------------


@tap.test
def test_run_instances(env):
    aws = cli(env)
    image = env.image()
    out = aws.ok("run-instances", "--image-id", image, "--count", "3", "--instance-type",
                 "t3.micro", "--tag-specifications",
                 "ResourceType=instance,Tags=[{Key=Name,Value=e2e-web},{Key=env,Value=test}]")
    insts = out.get("Instances", [])
    check_eq(len(insts), 3, "instances launched")
    check(out.get("ReservationId", "").startswith("r-"), "ReservationId", out)
    check_eq(out.get("OwnerId"), aws.creds.tenant_id, "OwnerId")
    check_eq(sorted(i["AmiLaunchIndex"] for i in insts), [0, 1, 2], "launch indexes")
    for i in insts:
        check(i["InstanceId"].startswith("i-") and len(i["InstanceId"]) == 19, "InstanceId", i)
        check_eq(i["ImageId"], image, "ImageId")
        check_eq(i["InstanceType"], "t3.micro", "InstanceType")
        check_eq(i["State"], {"Code": 0, "Name": "pending"}, "State")
        check_eq(i["Placement"]["AvailabilityZone"], "nubo-1a", "zone")
        check_eq(tags_of(i), {"Name": "e2e-web", "env": "test"}, "tags at launch")
    ids = [i["InstanceId"] for i in insts]
    check_eq(len(set(ids)), 3, "distinct instance ids")
    S["web"] = ids
    S["reservation"] = out["ReservationId"]


@tap.test
def test_describe_instances(env):
    aws = cli(env)
    ids = need("web")
    out = aws.ok("describe-instances", "--instance-ids", *ids)
    got = instances_of(out)
    check_eq(sorted(i["InstanceId"] for i in got), sorted(ids), "--instance-ids round trip")
    check_eq([r["ReservationId"] for r in out["Reservations"]], [S["reservation"]],
             "reservations")
    check_eq(out["Reservations"][0]["OwnerId"], aws.creds.tenant_id, "OwnerId")

    out = aws.ok("describe-instances", "--filters", "Name=tag:Name,Values=e2e-web",
                 "Name=instance-state-name,Values=pending")
    check_eq(sorted(i["InstanceId"] for i in instances_of(out)), sorted(ids),
             "tag:Name=e2e-web and instance-state-name=pending")
    out = aws.ok("describe-instances", "--filters", "Name=tag:Name,Values=nothing-like-this")
    check_eq(instances_of(out), [], "tag:Name filter matching nothing")

    # One instance "boots" (set as the compute agent would): the state filter follows.
    env.set_instance_state([ids[0]], "running")
    out = aws.ok("describe-instances", "--filters", "Name=instance-state-name,Values=running")
    check_eq([i["InstanceId"] for i in instances_of(out)], [ids[0]], "running instances")
    check_eq(instances_of(out)[0]["State"], {"Code": 16, "Name": "running"}, "running State")
    out = aws.ok("describe-instances", "--filters",
                 "Name=instance-state-name,Values=pending,running", "Name=tag:env,Values=test")
    check_eq(sorted(i["InstanceId"] for i in instances_of(out)), sorted(ids),
             "state pending OR running, tag env=test")
    aws.err("InvalidInstanceID.NotFound", "describe-instances", "--instance-ids",
            "i-0123456789abcdef0")


@tap.test
def test_tags(env):
    aws = cli(env)
    ids = need("web")
    target = ids[1]
    aws.ok("create-tags", "--resources", target, "--tags", "Key=owner,Value=alice",
           "Key=team,Value=e2e")
    out = aws.ok("describe-tags", "--filters", f"Name=resource-id,Values={target}")
    got = {(t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in out["Tags"]}
    want = {(target, "instance", k, v) for k, v in
            {"Name": "e2e-web", "env": "test", "owner": "alice", "team": "e2e"}.items()}
    check_eq(got, want, "describe-tags of the instance")
    out = aws.ok("describe-tags", "--filters", "Name=key,Values=owner")
    check_eq([(t["ResourceId"], t["Value"]) for t in out["Tags"]], [(target, "alice")],
             "describe-tags key=owner")
    out = aws.ok("describe-instances", "--instance-ids", target)
    check_eq(tags_of(instances_of(out)[0]),
             {"Name": "e2e-web", "env": "test", "owner": "alice", "team": "e2e"},
             "tags in describe-instances")
    # Overwrite a value.
    aws.ok("create-tags", "--resources", target, "--tags", "Key=owner,Value=bob")
    out = aws.ok("describe-instances", "--filters", "Name=tag:owner,Values=bob")
    check_eq([i["InstanceId"] for i in instances_of(out)], [target], "tag:owner=bob")

    aws.ok("delete-tags", "--resources", target, "--tags", "Key=owner")
    aws.ok("delete-tags", "--resources", target, "--tags", "Key=team,Value=wrong")
    out = aws.ok("describe-tags", "--filters", f"Name=resource-id,Values={target}")
    check_eq({t["Key"]: t["Value"] for t in out["Tags"]},
             {"Name": "e2e-web", "env": "test", "team": "e2e"},
             "after deleting owner (any value) and team=wrong (no match)")
    aws.ok("delete-tags", "--resources", target, "--tags", "Key=team,Value=e2e")
    out = aws.ok("describe-tags", "--filters", f"Name=resource-id,Values={target}")
    check_eq({t["Key"] for t in out["Tags"]}, {"Name", "env"}, "after deleting team=e2e")
    aws.err("InvalidInstanceID.NotFound", "create-tags", "--resources", "i-0123456789abcdef0",
            "--tags", "Key=a,Value=b")


@tap.test
def test_stop_pending_instance(env):
    aws = cli(env)
    ids = need("web")
    # ids[1] is pending: nothing to stop yet.
    aws.err("IncorrectInstanceState", "stop-instances", "--instance-ids", ids[1])
    out = aws.ok("describe-instances", "--instance-ids", ids[1])
    check_eq(instances_of(out)[0]["State"]["Name"], "pending", "state after refused stop")
    # ids[0] runs: it stops.
    out = aws.ok("stop-instances", "--instance-ids", ids[0])
    ch = out["StoppingInstances"]
    check_eq([(c["InstanceId"], c["PreviousState"]["Name"], c["CurrentState"]["Name"])
              for c in ch], [(ids[0], "running", "stopping")], "StoppingInstances")


@tap.test
def test_describe_instance_status(env):
    aws = cli(env)
    ids = need("web")
    env.set_instance_state([ids[2]], "running")
    out = aws.ok("describe-instance-status")
    check_eq([s["InstanceId"] for s in out["InstanceStatuses"]], [ids[2]],
             "without --include-all-instances: running instances only")
    st = out["InstanceStatuses"][0]
    check_eq(st["InstanceState"], {"Code": 16, "Name": "running"}, "InstanceState")
    check_eq(st["InstanceStatus"]["Status"], "ok", "InstanceStatus")
    check_eq(st["AvailabilityZone"], "nubo-1a", "AvailabilityZone")
    out = aws.ok("describe-instance-status", "--include-all-instances")
    states = {s["InstanceId"]: s["InstanceState"]["Name"] for s in out["InstanceStatuses"]}
    check_eq({i: states.get(i) for i in ids},
             {ids[0]: "stopping", ids[1]: "pending", ids[2]: "running"},
             "--include-all-instances")
    out = aws.ok("describe-instance-status", "--include-all-instances", "--instance-ids", ids[1])
    check_eq([(s["InstanceId"], s["InstanceStatus"]["Status"]) for s in out["InstanceStatuses"]],
             [(ids[1], "not-applicable")], "status of a pending instance")


@tap.test
def test_terminate_instances(env):
    aws = cli(env)
    ids = need("web")
    out = aws.ok("terminate-instances", "--instance-ids", ids[1], ids[2])
    ch = {c["InstanceId"]: (c["PreviousState"]["Name"], c["CurrentState"]["Name"])
          for c in out["TerminatingInstances"]}
    check_eq(ch, {ids[1]: ("pending", "terminated"), ids[2]: ("running", "shutting-down")},
             "TerminatingInstances (pending -> terminated, running -> shutting-down)")
    out = aws.ok("describe-instances", "--instance-ids", ids[1], ids[2])
    got = {i["InstanceId"]: i["State"]["Name"] for i in instances_of(out)}
    check_eq(got, {ids[1]: "terminated", ids[2]: "shutting-down"}, "states after terminate")
    # Terminating again is allowed and changes nothing.
    out = aws.ok("terminate-instances", "--instance-ids", ids[1])
    c = out["TerminatingInstances"][0]
    check_eq((c["PreviousState"]["Name"], c["CurrentState"]["Name"]),
             ("terminated", "terminated"), "terminating a terminated instance")
    aws.err("IncorrectInstanceState", "start-instances", "--instance-ids", ids[1])
    out = aws.ok("describe-instances", "--filters", "Name=instance-state-name,Values=terminated")
    check_eq([i["InstanceId"] for i in instances_of(out)], [ids[1]], "terminated filter")


@tap.test
def test_describe_instances_pagination(env):
    # A tenant of its own, so that exactly these 12 instances exist.
    aws = Aws(env, env.tenant("cli-pager"))
    image = env.image()
    launched = []
    for count in (5, 7):  # two reservations, so that pages cross a reservation boundary
        out = aws.ok("run-instances", "--image-id", image, "--count", str(count),
                     "--tag-specifications", "ResourceType=instance,Tags=[{Key=batch,Value=p}]")
        launched += [i["InstanceId"] for i in out["Instances"]]
    check_eq(len(set(launched)), 12, "instances launched")

    # 1. The CLI's automatic pagination, 5 per request.
    out = aws.ok("describe-instances", "--page-size", "5")
    got = [i["InstanceId"] for i in instances_of(out)]
    check_eq(len(got), len(set(got)), "duplicates with --page-size 5")
    check_eq(sorted(got), sorted(launched), "instances with --page-size 5")

    # 2. By hand: --max-results 5 and --next-token (pagination off).
    seen, token, pages = [], None, 0
    while True:
        args = ["describe-instances", "--max-results", "5"]
        if token:
            args += ["--next-token", token]
        out = aws.ok(*args)
        page = [i["InstanceId"] for i in instances_of(out)]
        check(len(page) <= 5, f"page {pages} has {len(page)} instances", page)
        seen += page
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
        check(pages < 10, "NextToken never ends", seen)
    check_eq(len(seen), len(set(seen)), "duplicates across --next-token pages")
    check_eq(sorted(seen), sorted(launched), "instances across --next-token pages")
    check_eq(pages, 3, "pages of 5 for 12 instances")

    # 3. The CLI's --max-items / --starting-token, with a filter.
    seen, token, pages = [], None, 0
    while True:
        args = ["describe-instances", "--max-items", "5", "--page-size", "5", "--filters",
                "Name=tag:batch,Values=p", "Name=instance-state-name,Values=pending"]
        if token:
            args += ["--starting-token", token]
        out = aws.ok(*args)
        seen += [i["InstanceId"] for i in instances_of(out)]
        pages += 1
        token = out.get("NextToken")
        if not token:
            break
        check(pages < 10, "--starting-token never ends", seen)
    check_eq(len(seen), len(set(seen)), "duplicates across --starting-token pages")
    check_eq(sorted(seen), sorted(launched), "instances across --starting-token pages")

    aws.err("InvalidParameterCombination", "describe-instances", "--instance-ids", launched[0],
            "--max-results", "5")
    aws.ok("terminate-instances", "--instance-ids", *launched)


if __name__ == "__main__":
    tap.main()
