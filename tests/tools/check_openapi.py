#!/usr/bin/python3
"""Checks that docs/openapi.yaml describes exactly the REST routes of api-gateway/rest_routes.c
(and the streamed ones of api-gateway/rest_upload.c's rest_stream_routes[]).

Usage: /usr/bin/python3 tests/tools/check_openapi.py [REPO]

Reads the route table's lines, `{"GET", "/v1/regions", get_regions},`, and every (method, path)
operation of the OpenAPI document's `paths`. A C pattern's "{}" and an OpenAPI placeholder such
as "{instance_id}" both become "{}" before the two sets are compared. Prints TAP: the plan
"1..1", then "ok 1 - ..." or "not ok 1 - ..." followed by '#' lines naming each difference;
exits 0 or 1.

Needs PyYAML (Debian's python3-yaml).
"""

import re
import sys
from pathlib import Path

import yaml

NAME = "openapi routes match rest_routes.c"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ROUTE_LINE = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\}')


def normalise(path):
    return re.sub(r"\{[^{}/]*\}", "{}", path)


def c_routes(source, table="rest_routes[]"):
    text = source.read_text()
    start = text.find(table)
    if start < 0:
        raise ValueError(f"{source}: no {table} table")
    end = text.find("};", start)
    return {(m, normalise(p)) for m, p in ROUTE_LINE.findall(text[start:end])}


def openapi_routes(doc_path):
    doc = yaml.safe_load(doc_path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise ValueError(f"{doc_path}: no 'paths' object")
    routes = set()
    for path, item in doc["paths"].items():
        for key in item or {}:
            if key.lower() in METHODS:
                routes.add((key.upper(), normalise(path)))
    return routes


def main():
    print("1..1")
    repo = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    try:
        code = c_routes(repo / "api-gateway/rest_routes.c")
        # The streamed routes (uploads, downloads) live outside the JSON route table.
        code |= c_routes(repo / "api-gateway/rest_upload.c", "rest_stream_routes[]")
        # The web console's session and event-stream routes (api-gateway/console.c).
        code |= c_routes(repo / "api-gateway/console.c", "console_api_routes[]")
        documented = openapi_routes(repo / "docs/openapi.yaml")
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"not ok 1 - {NAME}")
        print(f"# {e}".replace("\n", "\n# "))
        return 1
    if not code:
        print(f"not ok 1 - {NAME}")
        print("# no routes found in api-gateway/rest_routes.c")
        return 1
    missing = sorted(code - documented, key=lambda r: (r[1], r[0]))
    extra = sorted(documented - code, key=lambda r: (r[1], r[0]))
    if not missing and not extra:
        print(f"ok 1 - {NAME} ({len(code)} routes)")
        return 0
    print(f"not ok 1 - {NAME}")
    for m, p in missing:
        print(f"# in rest_routes.c, not in docs/openapi.yaml: {m} {p}")
    for m, p in extra:
        print(f"# in docs/openapi.yaml, not in rest_routes.c: {m} {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
