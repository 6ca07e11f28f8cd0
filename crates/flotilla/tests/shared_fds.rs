//! Creating and dropping shared objects leaks neither descriptors nor mappings. Alone in its
//! file so that no other test opens descriptors while it counts.

use flotilla::shared::{Array, Lock, RawArray, RawValue, Value};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn shared_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains("flotilla-shared"))
        .count()
}

#[test]
#[cfg_attr(miri, ignore = "creates memfds and mappings")]
fn no_descriptor_or_mapping_leaks() {
    // Warm up whatever the first use allocates once.
    drop(Value::new(0u8).unwrap());
    let (fds, maps) = (open_fds(), shared_mappings());
    for i in 0..500u64 {
        let value = Value::new(i).unwrap();
        let copy = value.clone();
        *copy.get_lock().unwrap() += 1;
        let array = Array::<u32>::new(100).unwrap();
        array.set(3, 3).unwrap();
        let raw = RawValue::new(i).unwrap();
        let raw_array = RawArray::<u8>::from_slice(&[1, 2, 3]).unwrap();
        let lock = Lock::new().unwrap();
        drop(lock.lock().unwrap());
        assert_eq!(value.load().unwrap(), i + 1);
        assert_eq!(raw.load() + u64::from(raw_array.get(0)), i + 1);
        if i == 0 {
            assert!(open_fds() >= fds + 5);
        }
    }
    assert_eq!(open_fds(), fds);
    assert_eq!(shared_mappings(), maps);
}
