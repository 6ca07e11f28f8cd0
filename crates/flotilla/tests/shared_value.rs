//! `flotilla::shared::{Value, RawValue}` across processes: the lost-update experiment with and
//! without the lock, values seen by children, and shared objects refused outside
//! `Process::start`.

use flotilla::process::{Process, Queue};

#[path = "support/children.rs"]
mod children;
use children::run_all;
use flotilla::shared::{Array, Plain, RawValue, Value};

const PROCESSES: u64 = 4;
const INCREMENTS: u64 = if cfg!(miri) { 10 } else { 5_000 };
/// Unlocked increments are cheap; enough of them that the children overlap.
const RAW_INCREMENTS: u64 = if cfg!(miri) { 10 } else { 1_000_000 };

/// `with counter.get_lock(): counter.value += 1`, `times` times.
#[flotilla::task]
fn add_locked(counter: Value<u64>, times: u64) {
    for _ in 0..times {
        *counter.get_lock().unwrap() += 1;
    }
}

/// `counter.value += 1` with no lock: a read, then a write.
#[flotilla::task]
fn add_unlocked(counter: RawValue<u64>, times: u64) {
    for _ in 0..times {
        let seen = counter.load();
        counter.store(seen + 1);
    }
}

/// Stores what it is told and reports what it saw first.
#[flotilla::task]
fn swap_in(value: Value<i64>, new: i64, seen: Queue<i64>) {
    let old = value.load().unwrap();
    value.store(new).unwrap();
    seen.put(old).unwrap();
}

/// A user type in shared memory: `#[derive(Plain)]` with no other dependency.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Plain)]
struct Particle {
    position: [f64; 3],
    hits: u32,
    id: u32,
}

/// Moves the particle and counts a hit, under its lock, in a child.
#[flotilla::task]
fn nudge(particle: Value<Particle>, cloud: Array<Particle>) {
    let mut p = particle.get_lock().unwrap();
    p.position[0] += 1.5;
    p.hits += 1;
    let mut cloud = cloud.get_lock().unwrap();
    cloud[1].id = p.id;
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn the_lock_prevents_lost_updates() {
    let counter = Value::new(0u64).unwrap();
    run_all(
        (0..PROCESSES)
            .map(|_| Process::new(AddLockedTask, (counter.clone(), INCREMENTS)))
            .collect(),
    );
    assert_eq!(counter.load().unwrap(), PROCESSES * INCREMENTS);
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn without_the_lock_updates_may_be_lost() {
    let counter = RawValue::new(0u64).unwrap();
    run_all(
        (0..PROCESSES)
            .map(|_| Process::new(AddUnlockedTask, (counter.clone(), RAW_INCREMENTS)))
            .collect(),
    );
    let total = counter.load();
    // Racy by design: the total may or may not fall short, so only its bounds are checked.
    println!(
        "without a lock: {total} of {} increments survived",
        PROCESSES * RAW_INCREMENTS
    );
    assert!((1..=PROCESSES * RAW_INCREMENTS).contains(&total));
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn a_child_sees_and_changes_the_parents_value() {
    let value = Value::new(-7i64).unwrap();
    let seen = Queue::new();
    run_all(vec![Process::new(
        SwapInTask,
        (value.clone(), 99, seen.clone()),
    )]);
    assert_eq!(seen.get().unwrap(), -7);
    assert_eq!(value.load().unwrap(), 99);
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
fn clones_share_memory_across_threads() {
    let value = Value::new(0u32).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let value = value.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    *value.get_lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(value.load().unwrap(), 4000);
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
fn shared_objects_travel_only_through_process_start() {
    let value = Value::new(1u8).unwrap();
    let err = postcard::to_stdvec(&value).unwrap_err();
    println!("refused: {err}");
    let raw = RawValue::new(1u8).unwrap();
    assert!(postcard::to_stdvec(&raw).is_err());
    // Decoding in a process that inherited nothing fails too.
    assert!(postcard::from_bytes::<Value<u8>>(&[0, 1, 1, 1, 1]).is_err());
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
fn raw_values_of_every_width() {
    let wide = RawValue::new([1u64, 2, 3]).unwrap();
    wide.store([4, 5, 6]);
    assert_eq!(wide.load(), [4, 5, 6]);
    let odd = RawValue::new([1u8, 2, 3]).unwrap();
    odd.store([9, 8, 7]);
    assert_eq!(odd.load(), [9, 8, 7]);
    let float = RawValue::new(0.5f32).unwrap();
    float.store(1.25);
    assert_eq!(float.load(), 1.25);
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn a_derived_plain_type_is_shared_with_a_child() {
    let start = Particle {
        position: [0.0, 2.0, 3.0],
        hits: 0,
        id: 7,
    };
    let particle = Value::new(start).unwrap();
    let cloud = Array::<Particle>::new(2).unwrap();
    run_all(vec![Process::new(
        NudgeTask,
        (particle.clone(), cloud.clone()),
    )]);
    assert_eq!(
        particle.load().unwrap(),
        Particle {
            position: [1.5, 2.0, 3.0],
            hits: 1,
            id: 7
        }
    );
    assert_eq!(cloud.get(1).unwrap().id, 7);
    assert_eq!(cloud.get(0).unwrap().id, 0);
}
