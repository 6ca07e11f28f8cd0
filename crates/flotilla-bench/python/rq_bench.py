"""redis-overhead for RQ: no-op jobs through the same Redis server, run by RQ workers.

Usage: rq_bench.py URL ITEMS WORKERS REPS. Starts WORKERS `rq worker` processes (RQ's default
worker, which forks a work horse per job), enqueues ITEMS no-op jobs one by one, then waits for
every result in order; one warm-up, then REPS timed runs. Prints JSON: items, seconds.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

JOBS = "def noop(x):\n    return x\n"

# Seconds one timed run may take (500 jobs take about 7 s here).
RUN_LIMIT = 120


def main():
    url, items, workers, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    from redis import Redis
    from rq import Queue

    tmp = tempfile.mkdtemp(prefix="flotilla-rq-")
    with open(os.path.join(tmp, "flotilla_rq_jobs.py"), "w") as f:
        f.write(JOBS)
    sys.path.insert(0, tmp)
    import flotilla_rq_jobs

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "--url", url, "--path", tmp, "--quiet",
             "--name", f"flotilla-bench-{os.getpid()}-{i}"],
            stdout=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    try:
        queue = Queue(connection=Redis.from_url(url))

        def once():
            start = time.perf_counter()
            # One deadline for the whole run, so that a stuck worker fails the row instead of
            # waiting out a timeout per job.
            deadline = start + RUN_LIMIT
            jobs = [queue.enqueue(flotilla_rq_jobs.noop, i) for i in range(items)]
            for i, job in enumerate(jobs):
                left = int(deadline - time.perf_counter())
                if left < 1:
                    raise SystemExit(f"RQ did not finish {items} jobs within {RUN_LIMIT} s")
                result = job.latest_result(timeout=left)
                if result is None or result.return_value != i:
                    raise SystemExit(f"job {i} gave {result}")
            return time.perf_counter() - start

        once()
        seconds = [once() for _ in range(reps)]
        json.dump({"items": items, "seconds": seconds}, sys.stdout)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
