#!/usr/bin/python3
"""Generates SigV4 test cases signed by botocore, an implementation independent of nubo's.

Usage: /usr/bin/python3 tests/tools/sigv4_cases.py --count N --seed S

Prints 2*N JSON lines. The first of each pair is a random request (method, path with characters
that need encoding, query with repeated names, empty values and non-ASCII text, headers with runs
of white space, a body) signed by botocore's SigV4Auth (header form, even cases) or SigV4QueryAuth
(presigned form, odd cases) at a fixed time, with "expect": "ok". The second is the same request
after one random mutation that changes what was signed, with the result a verifier must give:
"mismatch", "expired" or "reject" (any failure). The output depends only on N and S.

Each line has: id, form ("header"/"presigned"), mutation ("none" for valid cases), method, path
(raw, as on the wire), query (raw, without '?'), headers ([name, value] pairs as sent, including
Authorization and X-Amz-Date), unsigned_headers (sent but not signed: to be ignored), body_hex,
access_key, secret, keys (access key -> secret, for looking up the claimed key), region, service,
time (the signing time, seconds since the epoch), amz_date, now (the verifier's clock), expect,
and for header-form cases authorization (botocore's header, which a signer must reproduce).

Run it with Debian's /usr/bin/python3, which has python3-botocore.
"""

import argparse
import datetime
import hashlib
import json
import random
import sys
import types
from urllib.parse import quote, urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "nubo-1", "local"]
SERVICES = ["ec2", "iam", "sts", "nubo", "monitoring"]
HEADER_NAMES = [
    "Content-Type",
    "X-Amz-Target",
    "Accept",
    "Content-Encoding",
    "X-Nubo-Trace",
    "x-amz-meta-owner",
    "X-Custom",
]
# Path characters: unreserved, sub-delims and others that are legal unencoded in a path, escapes
# of either case, a stray '%', and non-ASCII text (botocore encodes it as UTF-8).
PATH_PIECES = list("abcXYZ019-_.~!$&'()*+,;=:@") + [
    "%2F", "%2f", "%20", "%25", "%C3%A9", "%e2%82%ac", "%41", "%", "%zz", " ", "é", "日本",
    "..", ".", "", "a..b", ".hidden",
]
QUERY_CHARS = list("abcXYZ019-_.~ !$&'()*+,/:;=?@[]%^") + ["é", "€", "日", "😀", "\x00", "\n"]

# Every signing uses this time, set per case: botocore reads datetime.datetime.utcnow().
_signing_time = [datetime.datetime(2015, 8, 30, 12, 36, 0)]


class _FixedDateTime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return _signing_time[0]


botocore.auth.datetime = types.SimpleNamespace(datetime=_FixedDateTime)


def rand_text(rng, chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def rand_key(rng):
    access = "AKIA" + rand_text(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16)
    secret = rand_text(
        rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40, 40
    )
    return access, secret


def rand_path(rng):
    segments = []
    for _ in range(rng.randint(0, 6)):
        segments.append("".join(rng.choice(PATH_PIECES) for _ in range(rng.randint(0, 4))))
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path += "/"
    return path


def rand_params(rng):
    params = []
    names = []
    for _ in range(rng.randint(0, 6)):
        if names and rng.random() < 0.3:
            name = rng.choice(names)  # a repeated name
        else:
            name = rand_text(rng, QUERY_CHARS, 1, 8)
            names.append(name)
        value = "" if rng.random() < 0.2 else rand_text(rng, QUERY_CHARS, 1, 12)
        params.append((name, value))
    return params


def aws_encode(s):
    return quote(s, safe="-_.~")


def rand_header_value(rng):
    chars = "abcXYZ019-_.,;:=/()\"' "
    words = [rand_text(rng, chars.strip(), 0, 8) for _ in range(rng.randint(0, 4))]
    out = rand_text(rng, " \t", 0, 3)
    for w in words:
        out += w + rand_text(rng, " \t", 1, 3)
    return out


def rand_headers(rng, host):
    # Case varies: signing and verification must lower-case names.
    headers = [(rng.choice(["Host", "host", "HOST"]), host)]
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(HEADER_NAMES)
        if rng.random() < 0.3:
            name = name.upper()
        headers.append((name, rand_header_value(rng)))
    rng.shuffle(headers)
    return headers


def rand_time(rng):
    return rng.randint(946684800, 4102444799)  # 2000-01-01 .. 2099-12-31


def amz_date_of(t):
    return datetime.datetime.utcfromtimestamp(t).strftime("%Y%m%dT%H%M%SZ")


def sign_header_form(rng, case):
    """Signs with SigV4Auth; fills the wire form of 'case'."""
    url = "http://" + case["host"] + case["path"]
    params = None
    if case["params"]:
        if rng.random() < 0.5:
            # botocore's params: sent urlencode()d (space as '+'), signed in AWS encoding.
            params = case["params"]
        else:
            # Raw query in AWS encoding, unsorted, some names without '='.
            parts = []
            for n, v in case["params"]:
                if v == "" and rng.random() < 0.5:
                    parts.append(aws_encode(n))
                else:
                    parts.append(aws_encode(n) + "=" + aws_encode(v))
            url += "?" + "&".join(parts)
    req = AWSRequest(method=case["method"], url=url, params=params, data=case["body"])
    for name, value in case["headers"]:
        req.headers[name] = value  # HTTPHeaders appends: repeated headers are kept
    _signing_time[0] = datetime.datetime.utcfromtimestamp(case["time"])
    creds = Credentials(case["access_key"], case["secret"])
    botocore.auth.SigV4Auth(creds, case["service"], case["region"]).add_auth(req)
    prepared = req.prepare()
    split = urlsplit(prepared.url)
    case["query"] = split.query
    case["wire_headers"] = list(case["headers"]) + [
        ("X-Amz-Date", req.headers["X-Amz-Date"]),
        ("Authorization", req.headers["Authorization"]),
    ]
    case["authorization"] = req.headers["Authorization"]
    case["amz_date"] = req.headers["X-Amz-Date"]


def sign_presigned_form(rng, case):
    """Signs with SigV4QueryAuth; fills the wire form of 'case'."""
    url = "http://" + case["host"] + case["path"]
    params = None
    if case["params"]:
        if rng.random() < 0.5:
            params = case["params"]
        else:
            url += "?" + "&".join(aws_encode(n) + "=" + aws_encode(v) for n, v in case["params"])
    req = AWSRequest(method=case["method"], url=url, params=params)
    for name, value in case["headers"]:
        req.headers[name] = value
    _signing_time[0] = datetime.datetime.utcfromtimestamp(case["time"])
    creds = Credentials(case["access_key"], case["secret"])
    botocore.auth.SigV4QueryAuth(
        creds, case["service"], case["region"], expires=case["expires"]
    ).add_auth(req)
    case["query"] = urlsplit(req.url).query
    case["wire_headers"] = list(case["headers"])
    case["amz_date"] = amz_date_of(case["time"])


def new_case(rng, index):
    presigned = index % 2 == 1
    keys = dict(rand_key(rng) for _ in range(3))
    access_key = rng.choice(sorted(keys))
    method = rng.choice(METHODS)
    body = b""
    if not presigned and method in ("POST", "PUT", "PATCH") and rng.random() < 0.8:
        if rng.random() < 0.5:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        else:
            body = b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123"
    host = rng.choice(["ec2.nubo.test", "localhost:8080", "127.0.0.1:18080", "api.example.com"])
    case = {
        "form": "presigned" if presigned else "header",
        "method": method,
        "host": host,
        "path": rand_path(rng),
        "params": rand_params(rng),
        "headers": rand_headers(rng, host),
        "body": body,
        "keys": keys,
        "access_key": access_key,
        "secret": keys[access_key],
        "region": rng.choice(REGIONS + [rand_text(rng, "abcdefghijklmnopqrstuvwxyz0123456789-",
                                                    1, 20)]),
        "service": rng.choice(SERVICES + [rand_text(rng, "abcdefghijklmnopqrstuvwxyz", 1, 12)]),
        "time": rand_time(rng),
        "unsigned_headers": [],
    }
    if presigned:
        case["expires"] = rng.choice([1, 60, 3600, 604800, rng.randint(1, 604800)])
        lo = case["time"] - 900
        hi = case["time"] + case["expires"]
        case["now"] = rng.choice([lo, hi, rng.randint(lo, hi)])
        sign_presigned_form(rng, case)
    else:
        if body and rng.random() < 0.3:
            case["headers"].append(("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest()))
        case["now"] = case["time"] + rng.choice([-900, 900, rng.randint(-900, 900)])
        sign_header_form(rng, case)
    if rng.random() < 0.3:
        # Headers added after signing (a proxy's, a User-Agent) are not covered and are ignored.
        case["unsigned_headers"].append(("User-Agent", "Boto3/1.26 " + rand_header_value(rng)))
    return case


def split_pairs(query):
    return query.split("&") if query else []


AUTH_PARAMS = ("X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Date=", "X-Amz-Expires=",
               "X-Amz-SignedHeaders=", "X-Amz-Signature=")


def is_auth_pair(pair):
    return pair.startswith(AUTH_PARAMS)


def replace_header(headers, lname, fn):
    out = []
    for name, value in headers:
        out.append((name, fn(value) if name.lower() == lname else value))
    return out


def mutate(rng, case):
    """Returns a copy of 'case' with one mutation and the expected verification result."""
    t = dict(case)
    t["wire_headers"] = list(case["wire_headers"])
    t["unsigned_headers"] = list(case["unsigned_headers"])
    presigned = case["form"] == "presigned"
    pairs = split_pairs(case["query"])
    op_pairs = [i for i, p in enumerate(pairs) if not is_auth_pair(p)]
    signed_names = sorted({n.lower() for n, _ in case["headers"]})
    choices = ["method", "path", "query-add", "signature", "access-key", "region", "service",
               "header-value", "body", "expired"]
    if op_pairs:
        choices += ["query-value", "query-drop"]
    if len(signed_names) > 1:
        choices.append("header-drop")
    if presigned:
        choices += ["expires-param", "date-param", "future"]
    else:
        choices += ["date-header", "signed-headers"]
    m = rng.choice(choices)
    t["mutation"] = m
    expect = "mismatch"

    def set_authz(fn, param):
        # Rewrites the claim: the Authorization header, or the presigned query parameter 'param'.
        if presigned:
            t["query"] = "&".join(fn(p) if p.startswith(param + "=") else p for p in pairs)
        else:
            t["wire_headers"] = replace_header(t["wire_headers"], "authorization", fn)

    if m == "method":
        t["method"] = rng.choice([x for x in METHODS if x != case["method"]])
    elif m == "path":
        t["path"] = case["path"] + "/" + rand_text(rng, "xyz", 1, 3)
    elif m == "query-add":
        extra = aws_encode(rand_text(rng, QUERY_CHARS, 1, 5)) + "=" + aws_encode("v")
        t["query"] = extra + "&" + case["query"] if case["query"] else extra
    elif m == "query-value":
        i = rng.choice(op_pairs)
        new = list(pairs)
        new[i] = pairs[i] + "Q"
        t["query"] = "&".join(new)
    elif m == "query-drop":
        i = rng.choice(op_pairs)
        t["query"] = "&".join(p for j, p in enumerate(pairs) if j != i)
    elif m == "signature":
        def flip(text):
            k = text.rindex("Signature=") + len("Signature=") + rng.randrange(64)
            c = text[k]
            return text[:k] + rng.choice([d for d in "0123456789abcdef" if d != c]) + text[k + 1:]
        set_authz(flip, "X-Amz-Signature")
    elif m in ("access-key", "region", "service"):
        other_key = rng.choice([k for k in case["keys"] if k != case["access_key"]])
        new_value = {
            "access-key": other_key,
            "region": case["region"] + "x",
            "service": case["service"] + "x",
        }[m]
        index = {"access-key": 0, "region": 2, "service": 3}[m]

        def rescope(text):
            sep = "%2F" if presigned else "/"
            start = text.index("Credential=") + len("Credential=")
            end = text.find(",", start) if not presigned else len(text)
            end = len(text) if end < 0 else end
            parts = text[start:end].split(sep)
            parts[index] = new_value
            return text[:start] + sep.join(parts) + text[end:]
        set_authz(rescope, "X-Amz-Credential")
    elif m == "header-value":
        name = rng.choice(signed_names)
        done = [False]

        def change(value):
            if done[0]:
                return value
            done[0] = True
            return value + "v"
        t["wire_headers"] = replace_header(t["wire_headers"], name, change)
    elif m == "header-drop":
        name = rng.choice(signed_names)
        t["wire_headers"] = [(n, v) for n, v in t["wire_headers"] if n.lower() != name]
    elif m == "body":
        body = bytearray(case["body"])
        if body and rng.random() < 0.5:
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        else:
            body += b"&x=1"
        t["body"] = bytes(body)
    elif m == "expired":
        expect = "expired"
        if presigned:
            t["now"] = case["time"] + case["expires"] + rng.randint(1, 10 ** 6)
        else:
            t["now"] = case["time"] + rng.choice([-1, 1]) * rng.randint(901, 10 ** 6)
    elif m == "future":
        expect = "expired"
        t["now"] = case["time"] - rng.randint(901, 10 ** 6)
    elif m == "expires-param":
        # Longer if possible; shorter may also make it expire.
        longer = case["expires"] < 604800
        expires = case["expires"] + 1 if longer else case["expires"] - 1
        expect = "mismatch" if longer else "reject"
        set_authz(lambda p: "X-Amz-Expires=%d" % expires, "X-Amz-Expires")
    elif m in ("date-param", "date-header"):
        # Another time inside the window: the signature (and maybe the scope date) differ.
        expect = "reject"
        moved = amz_date_of(case["time"] + rng.choice([-1, 1]) * rng.randint(1, 300))
        if presigned:
            set_authz(lambda p: "X-Amz-Date=" + moved, "X-Amz-Date")
        else:
            t["wire_headers"] = replace_header(t["wire_headers"], "x-amz-date", lambda v: moved)
    elif m == "signed-headers":
        # Claim fewer signed headers than were signed.
        def fewer(text):
            start = text.index("SignedHeaders=") + len("SignedHeaders=")
            end = text.index(",", start)
            names = text[start:end].split(";")
            names.remove(rng.choice([n for n in names if n != "host"]))
            return text[:start] + ";".join(names) + text[end:]
        set_authz(fewer, "X-Amz-SignedHeaders")
    t["expect"] = expect
    return t


def emit(case, index, kind):
    out = {
        "id": "%s-%d-%s" % (case["form"], index, kind),
        "form": case["form"],
        "mutation": case.get("mutation", "none"),
        "method": case["method"],
        "path": case["path"],
        "query": case["query"],
        "headers": [list(h) for h in case["wire_headers"]],
        "unsigned_headers": [list(h) for h in case["unsigned_headers"]],
        "body_hex": case["body"].hex(),
        "access_key": case["access_key"],
        "secret": case["secret"],
        "keys": case["keys"],
        "region": case["region"],
        "service": case["service"],
        "time": case["time"],
        "amz_date": case["amz_date"],
        "now": case["now"],
        "expect": case.get("expect", "ok"),
    }
    if "authorization" in case and kind == "valid":
        out["authorization"] = case["authorization"]
    print(json.dumps(out, sort_keys=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for i in range(args.count):
        case = new_case(rng, i)
        emit(case, i, "valid")
        emit(mutate(rng, case), i, "tampered")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
