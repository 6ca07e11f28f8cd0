//! One producer process, three consumer processes and a `JoinableQueue` between them.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, JoinableQueue, Queue, current_process
//!
//! def produce(jobs, count, consumers):
//!     for n in range(1, count + 1):
//!         jobs.put(n)
//!     for _ in range(consumers):
//!         jobs.put(None)                # one poison pill per consumer
//!
//! def consume(jobs, reports):
//!     done = total = 0
//!     while True:
//!         n = jobs.get()
//!         if n is None:
//!             reports.put((current_process().name, done, total))
//!             jobs.task_done()          # the pill is an item too
//!             break
//!         done += 1
//!         total += n * n
//!         jobs.task_done()
//!
//! if __name__ == '__main__':
//!     jobs, reports = JoinableQueue(maxsize=10), Queue()
//!     consumers = [Process(target=consume, args=(jobs, reports), name=f"consumer-{i}")
//!                  for i in range(3)]
//!     for c in consumers:
//!         c.start()
//!     p = Process(target=produce, args=(jobs, 300, len(consumers)), name="producer")
//!     p.start()
//!     p.join()                          # everything is put...
//!     jobs.join()                       # ...and now everything is done
//!     for c in consumers:
//!         c.join()
//!     print([reports.get() for _ in consumers])
//! ```
//!
//! The producer is joined before the queue: `jobs.join()` waits for the count of unfinished
//! items to reach zero, and before the producer has put anything that count already is
//! zero. The pills are `Option::None`, so the queue is a `JoinableQueue<Option<u64>>` and a
//! consumer's loop is `while let Some(n) = jobs.get()?`.
//!
//! The queue lives in this process; the children reach it through a small broker here, so
//! `qsize()` is exact rather than Python's approximation, and a
//! consumer's report is already in `reports` when its last `task_done` lets `jobs.join()`
//! return. The price: this process must outlive every child that uses the queue.

use std::error::Error;
use std::time::Duration;

use flotilla::process::{JoinableQueue, Process, Queue, current_process};

const ITEMS: u64 = 300;
const CONSUMERS: usize = 3;

/// A consumer's tally: its name, how many items it took, the sum of their squares.
type Report = (String, u64, u64);

/// Puts the numbers `1..=count`, then one poison pill per consumer.
#[flotilla::task]
fn produce(jobs: JoinableQueue<Option<u64>>, count: u64, consumers: usize) {
    for n in 1..=count {
        jobs.put(Some(n)).expect("the parent owns the queue");
    }
    for _ in 0..consumers {
        jobs.put(None).expect("the parent owns the queue");
    }
}

/// Squares numbers until it swallows a pill, marking each item done, then reports.
#[flotilla::task]
fn consume(jobs: JoinableQueue<Option<u64>>, reports: Queue<Report>) {
    let (mut done, mut total) = (0, 0);
    while let Some(n) = jobs.get().expect("the parent owns the queue") {
        done += 1;
        total += n * n;
        jobs.task_done().expect("one task_done per get");
    }
    let me = current_process().name().to_owned();
    reports
        .put((me, done, total))
        .expect("the parent owns the queue");
    jobs.task_done().expect("the pill is an item too");
}

fn main() -> Result<(), Box<dyn Error>> {
    let jobs = JoinableQueue::bounded(10).unwrap();
    let reports = Queue::new();
    let consumers: Vec<Process> = (0..CONSUMERS)
        .map(|i| {
            Process::new(ConsumeTask, (jobs.clone(), reports.clone()))
                .with_name(format!("consumer-{i}"))
        })
        .collect();
    let consumers = consumers
        .into_iter()
        .map(Process::start)
        .collect::<Result<Vec<_>, _>>()?;
    let producer = Process::new(ProduceTask, (jobs.clone(), ITEMS, CONSUMERS))
        .with_name("producer")
        .start()?;

    producer.join();
    assert_eq!(producer.exitcode(), Some(0), "the producer failed");
    println!("producer put {ITEMS} items and {CONSUMERS} poison pills");
    jobs.join()?;
    println!(
        "jobs.join() returned: every item is done, qsize = {}",
        jobs.qsize()?
    );
    assert_eq!(jobs.qsize()?, 0);
    for c in &consumers {
        assert!(
            c.join_timeout(Duration::from_secs(30)),
            "{} is stuck",
            c.name()
        );
        assert_eq!(c.exitcode(), Some(0), "{} failed", c.name());
    }

    let mut tallies: Vec<Report> = (0..CONSUMERS)
        .map(|_| reports.get())
        .collect::<Result<_, _>>()?;
    tallies.sort();
    for (name, done, _) in &tallies {
        println!("{name}: {done} items");
    }
    let consumed: u64 = tallies.iter().map(|(_, done, _)| done).sum();
    let total: u64 = tallies.iter().map(|(_, _, total)| total).sum();
    assert_eq!(consumed, ITEMS, "items were lost or duplicated");
    assert_eq!(total, (1..=ITEMS).map(|n| n * n).sum::<u64>());
    println!(
        "consumed {consumed} of {ITEMS} items across {CONSUMERS} consumer processes, none lost"
    );
    Ok(())
}
