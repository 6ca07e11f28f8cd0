"""The `python` rows of flotilla-bench: CPython's concurrent.futures and multiprocessing.

    python3 bench.py SCENARIO ITEMS WORKERS [--reps N] [--rounds R] [--chunksize C] [--fib N]
                     [--bytes B] [--pool executor|mp]

Runs one scenario of `flotilla-bench compare` and prints one JSON object on stdout:

    {"scenario": ..., "items": ..., "workers": ...,
     "seconds": [...],          # timed repetitions (after one warm-up), time.perf_counter
     "serial_seconds": [...],   # cpu-scaling only: the same tasks run serially
     "checksum": ...,           # thread-map, process-map-chunked: wrapping sum of the results
     "kib": [...]}              # idle-memory: VmRSS growth of the pool, in KiB;
                                # process-idle-memory: VmRSS of one idle worker, one per pool

The thread-* scenarios, cpu-scaling and idle-memory run on a ThreadPoolExecutor; the process-*
scenarios on a ProcessPoolExecutor or, with --pool mp (process-map-chunked only), on a
multiprocessing.Pool; manager-dict on a multiprocessing.Manager().dict() proxy. The pool is built before the warm-up and is not timed, as in the Rust
harness, except in process-startup, which times building it, one task and the shutdown.

The work functions are the pure-Python twins of crates/flotilla-bench/src/work.rs; the checksum
lets the harness check that both compute the same thing. CPU work in threads pays the GIL:
Python's workers run it one at a time.

Process pools use the "fork" start method: the default on Linux before Python 3.14, the fastest
to start, and the only one that works here, because the harness embeds this file (include_str!)
and runs it with `python3 -c`, so a spawned child would find no module to import the task
functions from. The copy here is the one that runs.
"""

import argparse
import functools
import json
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

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


def double(x):
    """work.rs's `double` task."""
    return (x * 2) & MASK


def echo(data):
    """work.rs's `echo_bytes` task: the bytes go to the worker and come back."""
    return data


def vm_rss_kib(pid="self"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line in /proc/{pid}/status")


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


def process_map(ex, args):
    # ProcessPoolExecutor.map and multiprocessing.Pool.map both take a chunksize.
    results = ex.map(double, range(args.items), chunksize=args.chunksize)
    return sum(results) & MASK


def large_arg(ex, args, data):
    """Round trips of a bytes object; each sends what the last one returned."""
    for _ in range(args.items):
        data = ex.submit(echo, data).result()
    if len(data) != args.bytes:
        raise RuntimeError(f"the worker sent back {len(data)} bytes, not {args.bytes}")
    return data


def manager_dict(d, args):
    """manager-dict: set then get each key through the proxy; the dict is emptied untimed."""
    for i in range(args.items):
        d[i] = i
        if d[i] != i:
            raise RuntimeError(f"the manager dict lost key {i}")


def run_manager(args, out):
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        d = manager.dict()
        seconds = []
        for rep in range(args.reps + 1):  # the first run is the warm-up
            d.clear()
            start = time.perf_counter()
            manager_dict(d, args)
            if rep > 0:
                seconds.append(time.perf_counter() - start)
        out["seconds"] = seconds


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


def startup(args, ctx):
    """One pool built, one result read, the pool shut down (its workers joined)."""
    ex = ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx)
    ex.submit(noop, 1).result()
    ex.shutdown(wait=True)


def process_idle_memory(args, ctx):
    """VmRSS of the worker that ran one task, read while it waits idle; one pool per sample."""
    kib = []
    for _ in range(args.reps):
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as ex:
            pid = ex.submit(os.getpid).result()
            kib.append(vm_rss_kib(pid))
    return kib


def count_up(counter, n):
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1


def shared_counter(args, ctx):
    """`workers` processes each add 1 to one multiprocessing.Value `items` times under its
    lock (the course's idiom), from start to join; the total is checked."""
    counter = ctx.Value("Q", 0)
    procs = [ctx.Process(target=count_up, args=(counter, args.items)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if counter.value != args.items * args.workers:
        raise SystemExit(f"the counter reached {counter.value}, not {args.items * args.workers}")


def run_process(args, out):
    ctx = multiprocessing.get_context("fork")
    if args.scenario == "shared-counter":
        out["seconds"], _ = timed(lambda: shared_counter(args, ctx), args.reps)
        return
    if args.scenario == "process-idle-memory":
        out["kib"] = process_idle_memory(args, ctx)
        return
    if args.scenario == "process-startup":
        out["seconds"], _ = timed(lambda: startup(args, ctx), args.reps)
        return
    if args.pool == "mp":
        if args.scenario != "process-map-chunked":
            raise SystemExit(f"--pool mp runs process-map-chunked only, not {args.scenario}")
        pool = ctx.Pool(args.workers)
    else:
        pool = ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx)
    with pool as ex:
        if args.scenario == "process-overhead":
            body = lambda: overhead(ex, args)  # noqa: E731
        elif args.scenario == "process-roundtrip":
            body = lambda: roundtrip(ex, args)  # noqa: E731
        elif args.scenario == "process-map-chunked":
            body = lambda: process_map(ex, args)  # noqa: E731
        else:
            data = b"\x07" * args.bytes  # made before the clock starts, like the Rust one
            body = lambda: large_arg(ex, args, data)  # noqa: E731
        out["seconds"], result = timed(body, args.reps)
        if args.scenario == "process-map-chunked":
            out["checksum"] = result
        if args.pool == "mp":
            # Pool.__exit__ terminates; close and join instead, like the executor's shutdown.
            ex.close()
            ex.join()


SCENARIOS = {
    "thread-overhead": overhead,
    "thread-roundtrip": roundtrip,
    "thread-map": thread_map,
    "cpu-scaling": cpu_scaling,
}

PROCESS_SCENARIOS = [
    "process-overhead",
    "process-roundtrip",
    "process-map-chunked",
    "process-startup",
    "process-large-arg",
    "process-idle-memory",
    "shared-counter",
]

OTHER_SCENARIOS = ["idle-memory", "manager-dict"]


def main():
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenario", choices=sorted([*SCENARIOS, *OTHER_SCENARIOS, *PROCESS_SCENARIOS])
    )
    parser.add_argument("items", type=int)
    parser.add_argument("workers", type=int)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=128)
    parser.add_argument("--chunksize", type=int, default=1000)
    parser.add_argument("--fib", type=int, default=32)
    parser.add_argument("--bytes", type=int, default=64 << 20)
    parser.add_argument("--pool", choices=["executor", "mp"], default="executor")
    args = parser.parse_args()

    out = {"scenario": args.scenario, "items": args.items, "workers": args.workers}
    if args.scenario in PROCESS_SCENARIOS:
        run_process(args, out)
    elif args.scenario == "manager-dict":
        run_manager(args, out)
    elif args.scenario == "idle-memory":
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
