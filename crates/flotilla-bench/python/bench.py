"""The `python` row of flotilla-bench: CPython's concurrent.futures.ThreadPoolExecutor.

    python3 bench.py SCENARIO ITEMS WORKERS [--reps N] [--rounds R] [--chunksize C] [--fib N]

Runs one scenario of `flotilla-bench compare` and prints one JSON object on stdout:

    {"scenario": ..., "items": ..., "workers": ...,
     "seconds": [...],          # timed repetitions (after one warm-up), time.perf_counter
     "serial_seconds": [...],   # cpu-scaling only: the same tasks run serially
     "checksum": ...,           # thread-map only: wrapping sum of the results
     "kib": [...]}              # idle-memory only: VmRSS growth of the pool, in KiB

The pool is built before the warm-up and is not timed, as in the Rust harness. The work
functions are the pure-Python twins of crates/flotilla-bench/src/work.rs; the checksum lets the
harness check that both compute the same thing. CPU work in threads pays the GIL: Python's
workers run it one at a time.

The harness embeds this file (include_str!) and runs it with `python3 -c`, so the copy here is
the one that runs.
"""

import argparse
import functools
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

MASK = (1 << 64) - 1
MUL = 0x5851F42D4C957F2D
ADD = 0x14057B7EF767814F


def work(x, rounds):
    """work.rs's `work`: `rounds` multiply-add-xorshift steps, wrapping at 64 bits."""
    acc = x
    for _ in range(rounds):
        acc = (acc * MUL + ADD) & MASK
        acc ^= acc >> 29
    return acc


def fib(n):
    """work.rs's `fib`."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def noop(x):
    return x


def vm_rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status")


def overhead(ex, args):
    futures = [ex.submit(noop, i) for i in range(args.items)]
    for future in futures:
        future.result()


def roundtrip(ex, args):
    for i in range(args.items):
        ex.submit(noop, i).result()


def thread_map(ex, args):
    # chunksize is ignored by ThreadPoolExecutor (it only batches for processes): one task
    # per item, which is what Python users get.
    results = ex.map(
        functools.partial(work, rounds=args.rounds), range(args.items), chunksize=args.chunksize
    )
    return sum(results) & MASK


def cpu_scaling(ex, args):
    futures = [ex.submit(fib, args.fib) for _ in range(args.items)]
    for future in futures:
        future.result()


def timed(body, reps):
    """One warm-up, then `reps` timed runs; returns (seconds, last result)."""
    result = body()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        result = body()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def idle_memory(args):
    barrier = threading.Barrier(args.workers)
    before = vm_rss_kib()
    ex = ThreadPoolExecutor(max_workers=args.workers)
    # The tasks meet at the barrier, so each runs on its own thread.
    futures = [ex.submit(barrier.wait) for _ in range(args.workers)]
    for future in futures:
        future.result()
    after = vm_rss_kib()
    ex.shutdown()
    return after - before


SCENARIOS = {
    "thread-overhead": overhead,
    "thread-roundtrip": roundtrip,
    "thread-map": thread_map,
    "cpu-scaling": cpu_scaling,
}


def main():
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted([*SCENARIOS, "idle-memory"]))
    parser.add_argument("items", type=int)
    parser.add_argument("workers", type=int)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=128)
    parser.add_argument("--chunksize", type=int, default=1000)
    parser.add_argument("--fib", type=int, default=32)
    args = parser.parse_args()

    out = {"scenario": args.scenario, "items": args.items, "workers": args.workers}
    if args.scenario == "idle-memory":
        out["kib"] = [idle_memory(args)]
    else:
        body = SCENARIOS[args.scenario]
        with ThreadPoolExecutor(max_workers=args.workers) as ex:
            out["seconds"], result = timed(lambda: body(ex, args), args.reps)
        if args.scenario == "thread-map":
            out["checksum"] = result
        if args.scenario == "cpu-scaling":
            out["serial_seconds"], _ = timed(
                lambda: [fib(args.fib) for _ in range(args.items)], args.reps
            )
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
