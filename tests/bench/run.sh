#!/usr/bin/env bash
# `make bench`: runs every benchmark program of build/release/bench. Each prints its figures as
# lines "bench NAME VALUE UNIT" on standard output (progress goes to standard error).
# Benchmarks are not tests: they print, they do not judge.
set -u
cd "$(dirname "$0")/../.."
status=0
# The compiled benchmarks, then the whole-system ones written in Python (they drive the release
# daemons through real clients).
for b in build/release/bench/* tests/bench/*.py; do
    [ -x "$b" ] || continue
    echo "# $(basename "$b")" >&2
    "$b" "$@" || status=1
done
exit $status
