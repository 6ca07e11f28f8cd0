//! `flotilla::shared::{Array, RawArray}`: filled in parallel by several processes, indexing,
//! snapshots.

use flotilla::process::Process;

#[path = "support/children.rs"]
mod children;
use children::run_all;
use flotilla::shared::{Array, RawArray};

const WORKERS: usize = 4;
const LEN: usize = if cfg!(miri) { 8 } else { 1000 };

/// Fills every `WORKERS`-th element starting at `first`, one locked `set` at a time.
#[flotilla::task]
fn fill_strided(array: Array<u64>, first: usize) {
    for i in (first..array.len()).step_by(WORKERS) {
        array.set(i, (i * i) as u64).unwrap();
    }
}

/// Fills the chunk `first..first + len` under one lock.
#[flotilla::task]
fn fill_chunk(array: Array<u64>, first: usize, len: usize) {
    let mut elements = array.get_lock().unwrap();
    for (i, slot) in elements[first..first + len].iter_mut().enumerate() {
        *slot = (first + i) as u64 + 1;
    }
}

/// Fills every `WORKERS`-th element of an unlocked array: disjoint indexes need no lock.
#[flotilla::task]
fn fill_raw(array: RawArray<f64>, first: usize) {
    for i in (first..array.len()).step_by(WORKERS) {
        array.set(i, i as f64 / 2.0);
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn four_processes_fill_one_array() {
    let array = Array::<u64>::new(LEN).unwrap();
    run_all(
        (0..WORKERS)
            .map(|w| Process::new(FillStridedTask, (array.clone(), w)))
            .collect(),
    );
    let expected: Vec<u64> = (0..LEN).map(|i| (i * i) as u64).collect();
    assert_eq!(array.to_vec().unwrap(), expected);
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn four_processes_fill_chunks_under_the_lock() {
    let array = Array::<u64>::new(LEN).unwrap();
    let chunk = LEN / WORKERS;
    run_all(
        (0..WORKERS)
            .map(|w| Process::new(FillChunkTask, (array.clone(), w * chunk, chunk)))
            .collect(),
    );
    let expected: Vec<u64> = (1..=LEN as u64).collect();
    assert_eq!(&*array.get_lock().unwrap(), &expected[..]);
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes and maps shared memory")]
fn four_processes_fill_a_raw_array() {
    let array = RawArray::<f64>::new(LEN).unwrap();
    run_all(
        (0..WORKERS)
            .map(|w| Process::new(FillRawTask, (array.clone(), w)))
            .collect(),
    );
    let expected: Vec<f64> = (0..LEN).map(|i| i as f64 / 2.0).collect();
    assert_eq!(array.to_vec(), expected);
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
fn arrays_index_like_slices() {
    let array = Array::from_slice(&[3u16, 1, 2]).unwrap();
    assert_eq!((array.len(), array.is_empty()), (3, false));
    array.get_lock().unwrap().sort_unstable();
    assert_eq!(array.to_vec().unwrap(), [1, 2, 3]);
    assert_eq!(array.get(2).unwrap(), 3);
    let empty = Array::<u8>::new(0).unwrap();
    assert!(empty.is_empty());
    assert!(empty.get_lock().unwrap().is_empty());
    let raw = RawArray::<u8>::new(0).unwrap();
    assert!(raw.to_vec().is_empty());
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
#[should_panic(expected = "out of range")]
fn out_of_range_panics() {
    let array = Array::<u8>::new(2).unwrap();
    let _ = array.get(2);
}

#[test]
#[cfg_attr(miri, ignore = "maps shared memory")]
fn impossible_sizes_are_errors() {
    let err = RawArray::<u64>::new(usize::MAX / 4).unwrap_err();
    println!("{err}");
    assert!(Array::<u64>::new(usize::MAX / 2).is_err());
}
