//! Task identity: a task's fingerprint follows the schema of its arguments and result (field
//! names, their order and types, enum variants), not the types' names; and two tasks
//! registered under one name are refused when a pool starts.
//!
//! The tasks here are defined inside blocks, where `module_path!()` cannot tell them apart:
//! every pair shares its name, and the field-order pair even shares its types' full
//! `std::any::type_name`s. That makes this test program one with duplicate task names.

use flotilla::ProcessPoolExecutor;
use flotilla::backend::signature;
use serde::{Deserialize, Serialize};

/// The fingerprints of two builds of one task, `area(Point) -> u64`, that differ only in the
/// order of `Point`'s fields.
fn field_order() -> (u64, u64) {
    let first = {
        #[derive(Serialize, Deserialize)]
        struct Point {
            x: u64,
            y: u64,
        }
        #[flotilla::task]
        fn area(p: Point) -> u64 {
            p.x * p.y
        }
        signature::<AreaTask>()
    };
    let second = {
        #[derive(Serialize, Deserialize)]
        struct Point {
            y: u64,
            x: u64,
        }
        #[flotilla::task]
        fn area(p: Point) -> u64 {
            p.x * p.y
        }
        signature::<AreaTask>()
    };
    (first, second)
}

#[test]
fn fields_in_another_order_give_another_fingerprint() {
    let (first, second) = field_order();
    assert_ne!(first, second);
}

#[test]
fn a_field_of_another_type_gives_another_fingerprint() {
    let narrow = {
        #[derive(Serialize, Deserialize)]
        struct Job {
            id: u32,
            tags: Vec<String>,
        }
        #[flotilla::task]
        fn run_job(job: Job) -> bool {
            job.id > 0 && job.tags.is_empty()
        }
        signature::<RunJobTask>()
    };
    let wide = {
        #[derive(Serialize, Deserialize)]
        struct Job {
            id: u64,
            tags: Vec<String>,
        }
        #[flotilla::task]
        fn run_job(job: Job) -> bool {
            job.id > 0 && job.tags.is_empty()
        }
        signature::<RunJobTask>()
    };
    assert_ne!(narrow, wide);
}

#[test]
fn a_changed_enum_gives_another_fingerprint() {
    let two = {
        #[derive(Serialize, Deserialize)]
        enum Mode {
            Fast,
            Careful { passes: u8 },
        }
        #[flotilla::task]
        fn pick(modes: Vec<Option<Mode>>) -> usize {
            modes.len()
        }
        signature::<PickTask>()
    };
    let three = {
        #[derive(Serialize, Deserialize)]
        enum Mode {
            Fast,
            Careful { passes: u8 },
            Lazy,
        }
        #[flotilla::task]
        fn pick(modes: Vec<Option<Mode>>) -> usize {
            modes.len()
        }
        signature::<PickTask>()
    };
    let renamed_field = {
        #[derive(Serialize, Deserialize)]
        enum Mode {
            Fast,
            Careful { rounds: u8 },
        }
        #[flotilla::task]
        fn pick(modes: Vec<Option<Mode>>) -> usize {
            modes.len()
        }
        signature::<PickTask>()
    };
    assert_ne!(two, three);
    assert_ne!(two, renamed_field);
    assert_ne!(three, renamed_field);
}

#[test]
fn the_same_schema_under_other_type_names_gives_the_same_fingerprint() {
    let one = {
        #[derive(Serialize, Deserialize)]
        struct Size {
            w: u32,
            h: u32,
        }
        #[flotilla::task]
        fn resize(path: String, to: Size) -> Vec<u8> {
            vec![0; (to.w * to.h) as usize + path.len()]
        }
        signature::<ResizeTask>()
    };
    let other = {
        #[derive(Serialize, Deserialize)]
        struct Dimensions {
            w: u32,
            h: u32,
        }
        #[flotilla::task]
        fn resize(path: String, to: Dimensions) -> Vec<u8> {
            vec![0; (to.w * to.h) as usize + path.len()]
        }
        signature::<ResizeTask>()
    };
    assert_eq!(one, other);
}

/// The fingerprint is part of the contract between builds: workers and clients built from
/// the same code by another compiler, or by another version of flotilla, must compute the same
/// value. If this test fails, the fingerprint changed and mixed clusters would refuse each
/// other's tasks: that needs a new protocol version, not a new expected value.
#[test]
fn the_fingerprint_is_the_same_in_every_build() {
    let (first, second) = field_order();
    assert_eq!(
        (first, second),
        (0x6370_8d65_bdf5_6c62, 0xfb64_3158_6129_6576),
        "{first:#018x} {second:#018x}"
    );
}

#[test]
fn a_pool_refuses_to_start_with_two_tasks_of_one_name() {
    let err = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .map(drop)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("task_fingerprints::"), "{text}");
    assert!(text.contains("registered under the name"), "{text}");
}
