//! Producers and consumers on a queue, stopped by poison pills, with `task_done` and `join`.
//!
//! The Python original puts work on a `queue.Queue(maxsize=...)` from producer threads;
//! consumer threads `get()` items and call `task_done()` for each; `queue.join()` in the main
//! thread returns when every item put has been marked done. Each consumer stops when it gets a
//! `None` "poison pill", one per consumer.
//!
//! `flotilla::sync::Queue` is that queue (`std::sync::mpsc` has no `task_done`/`join` and is
//! single-consumer). The pill is a variant of the message enum rather than `None`, so the
//! compiler makes every consumer handle it. The queue is bounded, so producers wait when
//! consumers fall behind, as with Python's `maxsize`. `task_done` returns an error when called
//! more often than items were taken (Python raises `ValueError`); here it cannot happen.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use flotilla::sync::Queue;

/// What travels on the queue.
enum Message {
    Job(u32),
    /// Tells one consumer to stop.
    Stop,
}

const PRODUCERS: u32 = 2;
const CONSUMERS: usize = 3;
const JOBS_PER_PRODUCER: u32 = 10;

fn main() {
    let queue = Arc::new(Queue::bounded(4).unwrap());
    let results = Arc::new(Mutex::new(Vec::new()));

    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let queue = Arc::clone(&queue);
            let results = Arc::clone(&results);
            thread::spawn(move || {
                let mut handled = 0;
                loop {
                    let message = queue.get();
                    let stop = match message {
                        Message::Job(n) => {
                            results
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(n * n);
                            handled += 1;
                            false
                        }
                        Message::Stop => true,
                    };
                    queue.task_done().expect("one task_done per get");
                    if stop {
                        println!("consumer {c}: got the poison pill after {handled} jobs");
                        return handled;
                    }
                }
            })
        })
        .collect();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for i in 0..JOBS_PER_PRODUCER {
                    queue.put(Message::Job(p * JOBS_PER_PRODUCER + i));
                }
                println!("producer {p}: put {JOBS_PER_PRODUCER} jobs");
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("producers do not panic");
    }
    for _ in 0..CONSUMERS {
        queue.put(Message::Stop);
    }

    queue.join();
    println!(
        "queue.join() returned: every item is done, qsize {}",
        queue.qsize()
    );

    let handled: usize = consumers
        .into_iter()
        .map(|c| c.join().expect("consumers do not panic"))
        .sum();
    let mut results = results
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    results.sort_unstable();
    let expected: Vec<u32> = (0..PRODUCERS * JOBS_PER_PRODUCER).map(|n| n * n).collect();
    println!("consumers handled {handled} jobs");
    assert_eq!(results, expected);
    assert_eq!(queue.qsize(), 0);
}
