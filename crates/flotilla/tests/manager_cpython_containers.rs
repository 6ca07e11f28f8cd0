//! Translated from CPython's `Lib/test/_test_multiprocessing.py` (3.13): `_TestContainers`
//! (manager lists, dicts, namespaces and proxies inside them), each test named after its
//! origin, plus the list and dict methods Python's proxies expose that those tests do not
//! reach (`BaseListProxy`, `DictProxy` in `Lib/multiprocessing/managers.py`).
//!
//! Where flotilla differs on purpose:
//! - Iteration is over a snapshot taken when `iter()` is called (one round trip), not live
//!   (one round trip per item): `test_list_iter`'s "modified during iteration" sees the old
//!   item, and `test_dict_iter`'s "changed size during iteration" is no `RuntimeError`.
//! - Lists and dicts are typed, so `test_list`'s list of proxies and `test_dict_proxy_nested`'s
//!   dict of dicts use proxy types as items (they are serde values), not Python's mixed lists.
//! - `b *= 2` and `b + [5, 6]` are Python operators with no proxy method; `extend` does both.
//! - Python's `pop()` and `d[k]` raise `IndexError`/`KeyError`; here they return `None`,
//!   except `Dict::pop`, which fails as Python's does.

use flotilla::manager::{Dict, List, Manager, Queue};

/// A new manager list holding `items`: Python's `manager.list(items)`.
fn list_of<T: serde::Serialize + serde::de::DeserializeOwned>(
    manager: &Manager,
    items: impl IntoIterator<Item = T>,
) -> Result<List<T>, flotilla::Error> {
    let list = manager.list()?;
    list.extend(items)?;
    Ok(list)
}

/// `_TestContainers::test_list`.
#[test]
fn test_list() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let a = list_of(&manager, 0..10)?;
    assert_eq!(a.to_vec()?, (0..10).collect::<Vec<_>>());
    let b = manager.list::<i32>()?;
    assert!(b.to_vec()?.is_empty());
    b.extend(0..5)?;
    assert_eq!(b.to_vec()?, [0, 1, 2, 3, 4]);
    assert_eq!(b.get(2)?, Some(2));
    assert_eq!(b.get_range(2..10)?, [2, 3, 4]);
    b.extend(b.to_vec()?)?; // b *= 2
    assert_eq!(b.to_vec()?, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert_eq!(a.to_vec()?, (0..10).collect::<Vec<_>>());
    // A list of proxies.
    let e = list_of(&manager, [a.clone(), b.clone()])?;
    let contents: Vec<Vec<i32>> = e.iter()?.map(|l| l.to_vec().unwrap()).collect();
    assert_eq!(
        contents,
        [
            (0..10).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        ]
    );
    let f = list_of(&manager, [a.clone()])?;
    a.push(&100)?; // Python appends 'hello'; a typed list holds one type
    assert_eq!(f.get(0)?.unwrap().to_vec()?.last(), Some(&100));
    Ok(())
}

/// `_TestContainers::test_list_iter`.
#[test]
fn test_list_iter() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let a = list_of(&manager, 0..10)?;
    let mut it = a.iter()?;
    assert_eq!(it.by_ref().collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    assert_eq!(it.next(), None); // exhausted
    // Modified during iteration: a snapshot does not see it (Python's live iterator does).
    let mut it = a.iter()?;
    a.set(0, &100)?;
    assert_eq!(it.next(), Some(0));
    assert_eq!(a.iter()?.next(), Some(100));
    Ok(())
}

/// `_TestContainers::test_list_proxy_in_list`.
#[test]
fn test_list_proxy_in_list() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let inner: Vec<List<i32>> = (0..3)
        .map(|_| list_of(&manager, 0..3))
        .collect::<Result<_, _>>()?;
    let a = list_of(&manager, inner)?;
    for l in a.iter()? {
        assert_eq!(l.to_vec()?, [0, 1, 2]);
    }
    let first = a.get(0)?.unwrap();
    first.set(2, &55)?; // a[0][-1] = 55
    assert_eq!(a.get(0)?.unwrap().to_vec()?, [0, 1, 55]);
    for i in 1..3 {
        assert_eq!(a.get(i)?.unwrap().to_vec()?, [0, 1, 2]);
    }
    assert_eq!(a.get(1)?.unwrap().pop()?, Some(2));
    assert_eq!(a.get(1)?.unwrap().len()?, 2);
    for i in [0, 2] {
        assert_eq!(a.get(i)?.unwrap().len()?, 3);
    }
    Ok(())
}

/// `_TestContainers::test_dict`.
#[test]
fn test_dict() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let d = manager.dict::<u32, char>()?;
    let indices: Vec<u32> = (65..70).collect();
    for &i in &indices {
        d.insert(&i, &char::from_u32(i).unwrap())?;
    }
    let expected: std::collections::HashMap<u32, char> = indices
        .iter()
        .map(|&i| (i, char::from_u32(i).unwrap()))
        .collect();
    assert_eq!(d.to_map()?, expected);
    let mut keys = d.keys()?;
    keys.sort();
    assert_eq!(keys, indices);
    let mut values = d.values()?;
    values.sort();
    assert_eq!(values, ['A', 'B', 'C', 'D', 'E']);
    let mut items = d.items()?;
    items.sort();
    assert_eq!(
        items,
        indices
            .iter()
            .map(|&i| (i, char::from_u32(i).unwrap()))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// `_TestContainers::test_dict_iter`.
#[test]
fn test_dict_iter() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let d = manager.dict::<u32, char>()?;
    d.update((65..70).map(|i| (i, char::from_u32(i).unwrap())))?;
    let mut it = d.iter()?;
    let mut keys: Vec<u32> = it.by_ref().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, (65..70).collect::<Vec<_>>());
    assert_eq!(it.next(), None); // exhausted
    // Changed size during iteration: the snapshot goes on (Python raises RuntimeError).
    let mut it = d.iter()?;
    d.clear()?;
    assert!(it.next().is_some());
    assert!(d.iter()?.next().is_none());
    Ok(())
}

/// `_TestContainers::test_dict_proxy_nested`.
#[test]
fn test_dict_proxy_nested() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let pets = manager.dict::<String, u32>()?;
    pets.update([("ferrets".to_owned(), 2), ("hamsters".to_owned(), 4)])?;
    let supplies = manager.dict::<String, u32>()?;
    supplies.update([("water".to_owned(), 10), ("feed".to_owned(), 3)])?;
    let d = manager.dict::<String, Dict<String, u32>>()?;
    d.update([
        ("pets".to_owned(), pets.clone()),
        ("supplies".to_owned(), supplies.clone()),
    ])?;
    let key = |s: &str| s.to_owned();
    let inner = |name: &str| d.get(&key(name)).map(Option::unwrap);
    assert_eq!(supplies.get(&key("water"))?, Some(10));
    assert_eq!(inner("supplies")?.get(&key("water"))?, Some(10));
    inner("supplies")?.insert(&key("blankets"), &5)?;
    assert_eq!(supplies.get(&key("blankets"))?, Some(5));
    inner("supplies")?.insert(&key("water"), &7)?;
    assert_eq!(supplies.get(&key("water"))?, Some(7));
    drop((pets, supplies));
    assert_eq!(inner("pets")?.get(&key("ferrets"))?, Some(2));
    let (pets, supplies) = (inner("pets")?, inner("supplies")?);
    d.clear()?;
    assert_eq!(d.len()?, 0);
    // The inner dicts live on (as long as the server, here).
    assert_eq!(supplies.get(&key("water"))?, Some(7));
    assert_eq!(pets.get(&key("hamsters"))?, Some(4));
    let l = list_of(&manager, [pets.clone(), supplies.clone()])?;
    l.get(0)?.unwrap().insert(&key("marmots"), &1)?;
    assert_eq!(pets.get(&key("marmots"))?, Some(1));
    Ok(())
}

/// `_TestContainers::test_nested_queue`.
#[test]
fn test_nested_queue() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let a = manager.list::<Queue<u32>>()?;
    a.push(&manager.queue(None)?)?;
    a.get(0)?.unwrap().put(123)?;
    assert_eq!(a.get(0)?.unwrap().get()?, 123);
    let b = manager.dict::<u32, Queue<u32>>()?;
    b.insert(&0, &manager.queue(None)?)?;
    b.get(&0)?.unwrap().put(456)?;
    assert_eq!(b.get(&0)?.unwrap().get()?, 456);
    Ok(())
}

/// `_TestContainers::test_namespace`.
#[test]
fn test_namespace() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let n = manager.namespace()?;
    n.set("name", "Bob")?;
    n.set("job", "Builder")?;
    assert_eq!(
        (n.get::<String>("name")?, n.get::<String>("job")?),
        (Some("Bob".to_owned()), Some("Builder".to_owned()))
    );
    assert!(n.remove("job")?);
    assert_eq!(n.names()?, ["name"]);
    assert_eq!(n.get::<String>("job")?, None);
    Ok(())
}

/// `BaseListProxy`'s `count`, `index`, `remove` and `pop(i)`, with Python's errors.
#[test]
#[allow(
    clippy::reversed_empty_ranges,
    reason = "reversed ranges are under test"
)]
fn list_count_index_remove_pop() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let l = list_of(&manager, [3, 1, 4, 1, 5, 9, 2, 6])?;
    assert_eq!(l.count(&1)?, 2);
    assert_eq!(l.count(&7)?, 0);
    assert_eq!(l.index(&1, ..)?, 1);
    assert_eq!(l.index(&1, 2..)?, 3);
    assert_eq!(l.index(&1, 2..=3)?, 3);
    assert!(l.index(&1, 4..).is_err()); // both are before 4
    assert!(matches!(
        l.index(&3, 1..),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    // Ranges past the end and reversed are empty, never an error of their own.
    assert!(l.index(&3, 100..).is_err());
    assert!(l.index(&3, 5..2).is_err());
    l.remove(&1)?;
    assert_eq!(l.to_vec()?, [3, 4, 1, 5, 9, 2, 6]);
    assert!(matches!(
        l.remove(&7),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    assert_eq!(l.pop_at(1)?, Some(4));
    assert_eq!(l.pop_at(100)?, None);
    assert_eq!(l.to_vec()?, [3, 1, 5, 9, 2, 6]);
    assert_eq!(l.get_range(4..2)?, Vec::<i32>::new());
    assert_eq!(l.get_range(..)?, l.to_vec()?);
    Ok(())
}

/// `DictProxy`'s `pop`, `get(k, default)`, `setdefault` and `update`.
#[test]
fn dict_pop_get_setdefault_update() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let d = manager.dict::<String, u32>()?;
    let k = |s: &str| s.to_owned();
    d.update([(k("a"), 1), (k("b"), 2)])?;
    d.update([(k("b"), 3)])?; // later pairs win
    assert_eq!(d.get(&k("b"))?, Some(3));
    assert_eq!(d.get_or(&k("z"), 26)?, 26);
    assert!(
        !d.contains_key(&k("z"))?,
        "get with a default inserts nothing"
    );
    assert_eq!(d.setdefault(&k("a"), &100)?, 1);
    assert_eq!(d.setdefault(&k("c"), &100)?, 100);
    assert_eq!(d.get(&k("c"))?, Some(100));
    assert_eq!(d.pop(&k("c"))?, 100);
    assert!(matches!(
        d.pop(&k("c")),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    assert_eq!(d.len()?, 2);
    Ok(())
}

/// `setdefault` is one atomic step: many threads racing on one key all see the first value.
#[test]
fn setdefault_is_atomic() -> Result<(), flotilla::Error> {
    let manager = Manager::new()?;
    let d = manager.dict::<u8, u32>()?;
    let seen: Vec<u32> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let d = &d;
                s.spawn(move || d.setdefault(&0, &n).unwrap())
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winner = d.get(&0)?.unwrap();
    assert!(seen.iter().all(|&v| v == winner), "{seen:?} vs {winner}");
    Ok(())
}
