//! Model-checks the queue core (`src/sync/queue.rs`) under shuttle's randomized schedules.
//!
//! The queue file is compiled here a second time against `support/shuttle_primitives.rs`, so
//! every lock and condvar wait is a scheduling point that shuttle explores. Shuttle has no
//! clock: a timed wait ends only when the thread is woken, and then counts as expired. Every
//! timeout scenario below therefore makes sure a wake-up eventually comes.

#[path = "support/shuttle_primitives.rs"]
mod primitives;

#[allow(dead_code, unreachable_pub)]
#[path = "../../flotilla-sync/src/queue.rs"]
mod queue;

use std::time::Duration;

use queue::{Empty, Full, LifoQueue, PriorityQueue, Queue};
use shuttle::sync::Arc;
use shuttle::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use shuttle::thread;

const ITERATIONS: usize = 500;
const PCT_DEPTH: usize = 3;

/// Runs `scenario` under both the random and the PCT scheduler.
fn check(scenario: fn()) {
    shuttle::check_random(scenario, ITERATIONS);
    shuttle::check_pct(scenario, ITERATIONS, PCT_DEPTH);
}

fn bounded_producers_and_consumers() {
    const PRODUCERS: usize = 2;
    const PER_PRODUCER: usize = 3;
    let queue = Arc::new(Queue::bounded(2).unwrap());
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    queue.put(p * 100 + i);
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..PER_PRODUCER {
                    got.push(queue.get());
                }
                got
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut all = Vec::new();
    for consumer in consumers {
        let got = consumer.join().unwrap();
        // FIFO: each producer's items reach any one consumer in the order they were put.
        for p in 0..PRODUCERS {
            let mine: Vec<_> = got.iter().filter(|&&x| x / 100 == p).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "out of order: {got:?}"
            );
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<_> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |i| p * 100 + i))
        .collect();
    assert_eq!(all, expected, "an item was lost or duplicated");
    assert!(queue.is_empty());
}

#[test]
fn bounded_queue_never_loses_or_duplicates_items() {
    check(bounded_producers_and_consumers);
}

fn put_blocks_while_full() {
    let queue = Arc::new(Queue::bounded(1).unwrap());
    let second_put_done = Arc::new(AtomicBool::new(false));
    queue.put(1);
    let producer = {
        let (queue, done) = (Arc::clone(&queue), Arc::clone(&second_put_done));
        thread::spawn(move || {
            queue.put(2);
            done.store(true, Ordering::SeqCst);
        })
    };
    assert!(matches!(queue.try_put(3), Err(Full(3))));
    assert!(
        !second_put_done.load(Ordering::SeqCst),
        "put returned while the queue was full"
    );
    assert_eq!(queue.get(), 1);
    assert_eq!(queue.get(), 2, "the blocked put resumed once a slot freed");
    producer.join().unwrap();
    assert!(second_put_done.load(Ordering::SeqCst));
}

#[test]
fn put_blocks_while_full_and_resumes() {
    check(put_blocks_while_full);
}

fn join_waits_for_task_done() {
    const ITEMS: usize = 4;
    let queue = Arc::new(Queue::new());
    let processed = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (queue, processed) = (Arc::clone(&queue), Arc::clone(&processed));
            thread::spawn(move || {
                for _ in 0..ITEMS / 2 {
                    let _item: usize = queue.get();
                    processed.fetch_add(1, Ordering::SeqCst);
                    queue.task_done().unwrap();
                }
            })
        })
        .collect();
    for i in 0..ITEMS {
        queue.put(i);
    }
    queue.join();
    assert_eq!(
        processed.load(Ordering::SeqCst),
        ITEMS,
        "join returned early"
    );
    assert!(queue.task_done().is_err(), "no unfinished task may remain");
    for consumer in consumers {
        consumer.join().unwrap();
    }
}

#[test]
fn join_returns_only_after_every_task_is_done() {
    check(join_waits_for_task_done);
}

fn two_joiners() {
    let queue = Arc::new(Queue::new());
    queue.put('a');
    queue.put('b');
    let joiners: Vec<_> = (0..2)
        .map(|_| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                queue.join();
                assert_eq!(queue.qsize(), 0);
            })
        })
        .collect();
    let worker = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for _ in 0..2 {
                queue.get();
                queue.task_done().unwrap();
            }
        })
    };
    worker.join().unwrap();
    for joiner in joiners {
        joiner.join().unwrap();
    }
}

#[test]
fn task_done_wakes_every_joiner() {
    check(two_joiners);
}

fn lifo_order() {
    let queue = Arc::new(LifoQueue::bounded(3).unwrap());
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for i in 0..3 {
                    queue.put(p * 100 + i);
                }
            })
        })
        .collect();
    // Take some items while the producers run, to exercise blocking puts.
    let early = [queue.get(), queue.get(), queue.get()];
    for producer in producers {
        producer.join().unwrap();
    }
    let mut rest = Vec::new();
    while let Ok(item) = queue.try_get() {
        rest.push(item);
    }
    // Once nobody puts any more, a LIFO hands out each producer's items newest first.
    for p in 0..2 {
        let mine: Vec<_> = rest.iter().filter(|&&x| x / 100 == p).collect();
        assert!(mine.windows(2).all(|w| w[0] > w[1]), "not LIFO: {rest:?}");
    }
    let mut all: Vec<_> = early.into_iter().chain(rest).collect();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 100, 101, 102]);
}

#[test]
fn lifo_queue_is_newest_first_under_concurrency() {
    check(lifo_order);
}

fn priority_order() {
    let queue = Arc::new(PriorityQueue::bounded(3).unwrap());
    let producers: Vec<_> = [[5, 1, 9], [4, 8, 2]]
        .into_iter()
        .map(|items| {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                for item in items {
                    queue.put(item);
                }
            })
        })
        .collect();
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || [queue.get(), queue.get(), queue.get()])
    };
    for producer in producers {
        producer.join().unwrap();
    }
    let early = consumer.join().unwrap();
    let mut rest = Vec::new();
    while let Ok(item) = queue.try_get() {
        rest.push(item);
    }
    assert!(
        rest.windows(2).all(|w| w[0] < w[1]),
        "not smallest first: {rest:?}"
    );
    let mut all: Vec<_> = early.into_iter().chain(rest).collect();
    all.sort_unstable();
    assert_eq!(all, [1, 2, 4, 5, 8, 9]);
}

#[test]
fn priority_queue_is_smallest_first_under_concurrency() {
    check(priority_order);
}

fn priority_get_is_minimal() {
    // One producer puts a known sequence; whatever the consumer gets must be the smallest
    // of the items put so far and not yet taken.
    const ITEMS: [u32; 4] = [3, 1, 4, 2];
    let queue = Arc::new(PriorityQueue::new());
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            for item in ITEMS {
                queue.put(item);
            }
        })
    };
    let mut taken: Vec<u32> = Vec::new();
    for _ in 0..ITEMS.len() {
        let item = queue.get();
        // Items put before `item` (in the producer's order) and not yet taken are >= item.
        let position = ITEMS.iter().position(|&x| x == item).unwrap();
        for earlier in &ITEMS[..position] {
            assert!(
                taken.contains(earlier) || *earlier > item,
                "got {item} while {earlier} was waiting"
            );
        }
        taken.push(item);
    }
    producer.join().unwrap();
}

#[test]
fn priority_get_returns_the_smallest_item_present() {
    check(priority_get_is_minimal);
}

fn get_timeout_never_loses_an_item() {
    let queue = Arc::new(Queue::new());
    let producer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.put(1))
    };
    let grabber = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.try_get())
    };
    let timed = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.get_timeout(Duration::from_secs(1)))
    };
    producer.join().unwrap();
    let grabbed = grabber.join().unwrap();
    // Wakes the timed getter if it is still waiting (shuttle has no clock to time it out).
    queue.put(2);
    let timed = timed.join().unwrap();
    let mut seen: Vec<_> = [grabbed, timed].into_iter().flatten().collect();
    while let Ok(item) = queue.try_get() {
        seen.push(item);
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2]);
    assert!(matches!(queue.try_get(), Err(Empty)));
}

#[test]
fn get_timeout_hands_over_or_leaves_the_item() {
    check(get_timeout_never_loses_an_item);
}

fn put_timeout_hands_the_item_back() {
    let queue = Arc::new(Queue::bounded(1).unwrap());
    queue.put(0);
    let timed = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.put_timeout(1, Duration::from_secs(1)))
    };
    let rival = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.try_put(2))
    };
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.get())
    };
    let mut seen = vec![consumer.join().unwrap()];
    if let Err(Full(item)) = rival.join().unwrap() {
        seen.push(item);
    }
    // Only the timed put can fill the queue now: emptying it wakes that put if it waits.
    while let Ok(item) = queue.try_get() {
        seen.push(item);
    }
    if let Err(Full(item)) = timed.join().unwrap() {
        seen.push(item);
    }
    while let Ok(item) = queue.try_get() {
        seen.push(item);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        [0, 1, 2],
        "every item is either in the queue or handed back"
    );
}

#[test]
fn put_timeout_never_loses_an_item() {
    check(put_timeout_hands_the_item_back);
}

fn timed_getter_passes_on_its_wakeup() {
    // A timed getter and a blocking getter may both wait when one put wakes one of them. If
    // the woken one were the timed getter and it gave up while the item sat in the queue, the
    // blocking getter would sleep forever next to an item (shuttle reports that as a
    // deadlock). Each getter puts a fresh item after its get, so that whichever order the
    // schedule picks, nobody waits for an item that will never come.
    let queue = Arc::new(Queue::new());
    let timed = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let got = queue.get_timeout(Duration::from_secs(1));
            if got.is_ok() {
                queue.put(2);
            }
            got
        })
    };
    let blocking = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let got = queue.get();
            queue.put(3);
            got
        })
    };
    queue.put(1);
    let timed = timed.join().unwrap();
    let mut seen = vec![blocking.join().unwrap()];
    let mut made = vec![1, 3];
    if let Ok(item) = timed {
        seen.push(item);
        made.push(2);
    }
    while let Ok(item) = queue.try_get() {
        seen.push(item);
    }
    seen.sort_unstable();
    made.sort_unstable();
    assert_eq!(seen, made, "an item was lost or duplicated");
}

#[test]
fn a_timed_out_getter_never_swallows_a_wakeup() {
    check(timed_getter_passes_on_its_wakeup);
}

fn timed_putter_passes_on_its_wakeup() {
    // The mirror image: a full queue, a timed and a blocking putter, one get. Each putter takes
    // an item after its put so that the other one always finds a slot eventually.
    let queue = Arc::new(Queue::bounded(1).unwrap());
    queue.put(0);
    let timed = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || match queue.put_timeout(1, Duration::from_secs(1)) {
            Ok(()) => (None, Some(queue.get())),
            Err(Full(item)) => (Some(item), None),
        })
    };
    let blocking = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            queue.put(2);
            queue.get()
        })
    };
    let mut seen = vec![queue.get()];
    let (handed_back, taken) = timed.join().unwrap();
    seen.extend(handed_back);
    seen.extend(taken);
    seen.push(blocking.join().unwrap());
    while let Ok(item) = queue.try_get() {
        seen.push(item);
    }
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2], "an item was lost or duplicated");
}

#[test]
fn a_timed_out_putter_never_swallows_a_wakeup() {
    check(timed_putter_passes_on_its_wakeup);
}
