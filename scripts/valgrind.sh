#!/usr/bin/env bash
# Runs the tests that exercise flotilla's unsafe code under valgrind's memcheck, following
# every child process: scoped tasks' erased lifetimes (thread_pool/scope.rs); shared memory
# and robust process-shared locks (flotilla::shared); descriptor passing (process/fds.rs:
# every shared object, queue and connection reaches its child that way); the spawn step
# (spawn.rs, through every child these tests start; process_spawn itself counts the
# descriptors a child holds, and valgrind holds its own in every child); and the process
# pool's supervisor, progress page and worker runtime (process_pool_basics; the tests whose tasks crash on purpose are left out, since memcheck
# reports a death by signal as an error). Fails if memcheck reports an error in any process,
# or if a test fails.
#
# Leaks are not errors here: tests that forget guards leak on purpose (a forgotten guard keeps
# its segment mapped), and children that are SIGKILLed or `_exit` leave their heap behind.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
valgrind --version

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# flotilla re-executes its program through /proc/self/exe, which inside valgrind names
# valgrind itself; this preload resolves the link before exec so that valgrind follows the
# child into the test program (see the file).
cc -shared -fPIC -O2 -o "$work/exec_self.so" scripts/valgrind/exec_self.c -ldl

# Each run: a test file of the flotilla crate, then the arguments for its test binary. Left
# out: without_the_lock_updates_may_be_lost (millions of unlocked increments: minutes under
# valgrind, and only relaxed atomics) and a_process_killed_inside_the_semaphore_does_not_hang_others
# (it bounds a recovery at 2 s, which valgrind's slowdown cannot meet; the same recovery path
# runs in shared_killed_waiters and shared_stress). Of shared_holders' five lock types, Lock
# (with RLock: the filter "lock::" matches both) and Condition; Value and Array take their lock
# through the same guard, and shared_value and shared_array run whole; of its four
# internal-lock types, Event (the semaphores and the barrier recover through the same code).
runs=(
    "shared_lock"
    "shared_value --skip without_the_lock_updates_may_be_lost"
    "shared_array"
    "shared_condition"
    "shared_sync --skip a_process_killed_inside_the_semaphore_does_not_hang_others"
    "shared_holders lock:: condition:: event:: a_forgotten_guard dropping_every_other_handle"
    "shared_killed_waiters"
    "shared_killed_wakers"
    "shared_attacks"
    "shared_fds"
    "shared_stress"
    "process_pipes"
    "process_pool_basics"
    "thread_pool_scope"
)

tests=()
for run in "${runs[@]}"; do
    tests+=(--test "${run%% *}")
done
echo "== building ${#runs[@]} test binaries"
cargo test -p flotilla-rs --features full "${tests[@]}" --no-run --message-format=json >"$work/build.json"

# The executable cargo built for test target `$1`.
executable() {
    grep '"reason":"compiler-artifact"' "$work/build.json" |
        grep "\"kind\":\[\"test\"\],\"crate_types\":\[\"bin\"\],\"name\":\"$1\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1
}

# What memcheck prints first for each error it finds, in any process (a SIGKILLed child
# prints its errors as they happen but never its summary).
error_lines='^==[0-9]+== (Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap|Argument .* of function|Process terminating with default action)'

failed=0
cd crates/flotilla # where cargo runs the crate's tests
for run in "${runs[@]}"; do
    name="${run%% *}"
    args=()
    [[ "$run" == *" "* ]] && read -r -a args <<<"${run#* }"
    binary="$(executable "$name")"
    [[ -n "$binary" ]] || { echo "no test binary for $name" >&2; exit 1; }
    logs="$work/$name"
    mkdir -p "$logs"
    started=$SECONDS
    status=0
    LD_PRELOAD="$work/exec_self.so" FLOTILLA_STRESS_SEED=1 timeout --kill-after=10s 600s \
        valgrind --tool=memcheck --error-exitcode=1 --trace-children=yes \
        --log-file="$logs/memcheck.%p.log" "$binary" "${args[@]}" >"$logs/test.out" 2>&1 ||
        status=$?
    processes=$(find "$logs" -name 'memcheck.*.log' | wc -l)
    reported=$(cat "$logs"/memcheck.*.log | grep -cE "$error_lines" || true)
    echo "$name: exit $status, $processes processes, $reported memcheck errors, $((SECONDS - started)) s"
    if [[ $status -ne 0 || $reported -ne 0 ]]; then
        failed=1
        grep -E "^test .*FAILED|panicked|test result" "$logs/test.out" || tail -n 20 "$logs/test.out"
        for log in "$logs"/memcheck.*.log; do
            if grep -qE "$error_lines|ERROR SUMMARY: [1-9]" "$log"; then
                echo "--- $log"
                grep -vE '^==[0-9]+== (HEAP|LEAK|  |    |Rerun|For )' "$log"
            fi
        done
    fi
done
exit $failed
