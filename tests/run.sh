#!/usr/bin/env bash
# nubo's test runner: runs every test program of build/$MODE/tests, plus the source checks, and
# ends with one line "N passed, N failed".
#
# Each test program is a cmocka runner with named, independent cases. Run one program alone with
# build/debug/tests/test_sigv4, or one case by name with CMOCKA_TEST_FILTER=... (glob).
# Set NUBO_TEST_ONLY=test_pg (a glob on program names) to run a subset.
set -u
cd "$(dirname "$0")/.." || exit 1
MODE=${MODE:-debug}
dir=build/$MODE/tests
log_dir=build/$MODE/test-logs
mkdir -p "$log_dir"

passed=0
failed=0
skipped=0
failed_names=()

# ASan: abort on the first error; LeakSanitizer on (it does work here as root).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

report() { # name, status: a check counted as one test, its output in $log_dir/$name.log
    local name=$1
    if [ "$2" = 0 ]; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name (see $log_dir/$name.log)"
        tail -n 20 "$log_dir/$name.log" | sed 's/^/    /'
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

check() { # name, command...: runs the command as one check
    local name=$1
    shift
    "$@" >"$log_dir/$name.log" 2>&1
    report "$name" $?
}

if [ -z "${NUBO_TEST_ONLY:-}" ]; then
    check format make --no-print-directory format-check
    check lint make --no-print-directory lint
    if [ -f tests/tools/check_openapi.py ]; then
        check openapi /usr/bin/python3 tests/tools/check_openapi.py
    fi
    # Every parser meets garbage: each libFuzzer target runs for a few seconds (6) from its seeds
    # (new inputs go to a scratch corpus under build/), as many at once as there are cores
    # (FUZZ_JOBS); their results are reported in order. Longer runs: make fuzz FUZZ_SECONDS=300.
    fuzz_jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
    fuzzers=()
    for f in "build/$MODE"/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        n=$(basename "$f")
        fuzzers+=("$n")
        mkdir -p "build/$MODE/corpus/$n"
        rm -f "$log_dir/$n.rc"
        (
            "$f" -max_total_time="${FUZZ_SECONDS:-6}" "build/$MODE/corpus/$n" \
                "tests/fuzz/corpus/$n" >"$log_dir/$n.log" 2>&1
            echo $? >"$log_dir/$n.rc"
        ) &
        while [ "$(jobs -rp | wc -l)" -ge "$fuzz_jobs" ]; do
            wait -n
        done
    done
    wait
    for n in "${fuzzers[@]}"; do
        report "$n" "$(cat "$log_dir/$n.rc" 2>/dev/null || echo missing)"
    done
fi

# Test programs: the cmocka programs built from tests/unit and tests/integration, the SDK's own
# tests (sdk/c/tests), then the end-to-end tests with real clients (tests/e2e/test_*.py, run by Debian's python3, which has
# boto3). Both speak TAP.
programs=("$dir"/test_* build/sdk/tests/test_* tests/e2e/test_*.py)
for t in "${programs[@]}"; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    runner=()
    case $t in *.py) runner=(/usr/bin/python3) ;; *) [ -x "$t" ] || continue ;; esac
    # shellcheck disable=SC2053
    if [ -n "${NUBO_TEST_ONLY:-}" ] && [[ $name != ${NUBO_TEST_ONLY} ]]; then
        continue
    fi
    echo "# $name"
    start=$(date +%s)
    CMOCKA_MESSAGE_OUTPUT=TAP "${runner[@]}" "$t" >"$log_dir/$name.log" 2>&1
    rc=$?
    ok=$(grep -c '^ok ' "$log_dir/$name.log")
    skip=$(grep -c '^not ok .*# SKIP' "$log_dir/$name.log")
    bad=$(($(grep -c '^not ok ' "$log_dir/$name.log") - skip))
    grep -E '^(ok|not ok) ' "$log_dir/$name.log" | sed 's/^/  /'
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        # The program died (sanitizer, crash) outside a case: count it as one failure.
        bad=1
        echo "  not ok - $name exited with status $rc"
    fi
    if [ "$bad" -gt 0 ]; then
        tail -n 40 "$log_dir/$name.log" | sed 's/^/    /'
        failed_names+=("$name")
    fi
    echo "  ($(($(date +%s) - start)) s)"
    passed=$((passed + ok))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
