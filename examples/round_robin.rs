//! A round-robin scheduler of generator-like tasks, on one thread.
//!
//! The Python original (after David Beazley's generator talks) writes tasks as generators
//! that `yield` whenever they are willing to give up control, keeps them in a
//! `collections.deque`, and loops: pop a task, `next(task)`, append it back, drop it on
//! `StopIteration`. Tasks interleave with no threads at all.
//!
//! Stable Rust has no generators, but a generator is just a resumable step function, which is
//! what `Iterator::next` is: a struct keeping its own state between steps (`Countdown`), or a
//! closure captured by `std::iter::from_fn` (`countup`). `None` plays `StopIteration`. This is
//! also, in miniature, what an async runtime does with futures (`poll` is the step).

use std::collections::VecDeque;

/// A task that counts down, one number per step.
struct Countdown {
    n: u32,
}

impl Iterator for Countdown {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.n == 0 {
            return None;
        }
        let line = format!("T-minus {}", self.n);
        self.n -= 1;
        Some(line)
    }
}

/// A task that counts up to `limit`, written as a closure holding its state.
fn countup(limit: u32) -> impl Iterator<Item = String> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i == limit {
            return None;
        }
        i += 1;
        Some(format!("counting up {i}"))
    })
}

type Task = (&'static str, Box<dyn Iterator<Item = String>>);

fn main() {
    let mut tasks: VecDeque<Task> = VecDeque::new();
    tasks.push_back(("countdown", Box::new(Countdown { n: 3 })));
    tasks.push_back(("countup", Box::new(countup(5))));
    tasks.push_back(("ticker", Box::new((1..=2).map(|t| format!("tick {t}")))));
    let task_count = tasks.len();

    let mut trace = Vec::new();
    while let Some((name, mut task)) = tasks.pop_front() {
        match task.next() {
            Some(line) => {
                println!("[{name:>9}] {line}");
                trace.push(name);
                tasks.push_back((name, task));
            }
            None => println!("[{name:>9}] finished"),
        }
    }
    println!(
        "scheduler: all {task_count} tasks finished after {} steps",
        trace.len()
    );
    // Round robin: the first three steps come from three different tasks.
    assert_eq!(&trace[..3], ["countdown", "countup", "ticker"]);
    assert_eq!(trace.len(), 3 + 5 + 2);
}
