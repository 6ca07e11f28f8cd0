//! Translated from CPython's `Lib/test/_test_multiprocessing.py` (3.13): the register parts
//! of `_TestMyManager` (`MyManager.register('Foo', FooBar)`, `'Bar'` with `exposed`, `'baz'`
//! with an iterator proxy) and `_TestRemoteManager` (a queue registered on a TCP manager,
//! reached by another process that only knows the address and the key). Each test is named
//! after its origin.
//!
//! Where flotilla differs on purpose:
//! - Python registers a callable on a manager class, and the server calls it in another
//!   process that imported the same module. flotilla registers [`Shared`] types on the
//!   server's [`Setup`] in a `#[flotilla::task]` of the program, named with
//!   `ManagerBuilder::server`, which runs in the server process.
//! - `exposed` (which methods a proxy may call) is the type's `Request` enum: `Foo` has no
//!   way to ask for `_h` at all. Python's `RemoteError` for `foo._callmethod('_h')` becomes a
//!   `Bar` request sent to a `Foo` object, which the server refuses (every call names its
//!   type).
//! - `_TestRemoteManager` uses xmlrpclib to show that an unpicklable put fails; a typed
//!   queue cannot be handed an unserialisable item of its own type, so that line is left out
//!   (`manager_queue_put.rs` tests failed encodings).

use std::time::Duration;

use flotilla::manager::{Manager, Queue, Remote, Setup, Shared};
use flotilla::process::Process;
use serde::{Deserialize, Serialize};

const PATIENCE: Duration = Duration::from_secs(60);

/// `FooBar` as registered under `'Foo'`: exposes `f` and `g`.
struct Foo;

#[derive(Serialize, Deserialize)]
enum FooMethod {
    F,
    G,
}

impl Shared for Foo {
    type Args = ();
    type Request = FooMethod;
    /// `Err` is Python's `ValueError` raised in the server and re-raised in the client.
    type Reply = Result<String, String>;

    fn new((): ()) -> Foo {
        Foo
    }

    fn call(&mut self, method: FooMethod) -> Result<String, String> {
        match method {
            FooMethod::F => Ok("f()".to_owned()),
            FooMethod::G => Err("ValueError".to_owned()),
        }
    }
}

/// `FooBar` as registered under `'Bar'` with `exposed=('f', '_h')`.
struct Bar;

#[derive(Serialize, Deserialize)]
enum BarMethod {
    F,
    H,
}

impl Shared for Bar {
    type Args = ();
    type Request = BarMethod;
    type Reply = String;

    fn new((): ()) -> Bar {
        Bar
    }

    fn call(&mut self, method: BarMethod) -> String {
        match method {
            BarMethod::F => "f()".to_owned(),
            BarMethod::H => "_h()".to_owned(),
        }
    }
}

/// `baz`, a generator of squares, with `IteratorProxy`: each call is `__next__`.
struct Baz(std::ops::Range<u32>);

impl Shared for Baz {
    type Args = u32;
    type Request = ();
    type Reply = Option<u32>;

    fn new(n: u32) -> Baz {
        Baz(0..n)
    }

    fn call(&mut self, (): ()) -> Option<u32> {
        self.0.next().map(|i| i * i)
    }
}

/// `MyManager`: its server, with the three registrations.
#[flotilla::task]
fn my_manager(setup: Setup) {
    setup
        .register::<Foo>("Foo")
        .register::<Bar>("Bar")
        .register::<Baz>("baz")
        .serve();
}

/// `_TestMyManager.common`.
fn common(manager: &Manager) -> Result<(), flotilla::Error> {
    let foo_proxy = manager.create::<Foo>("Foo", &())?;
    let bar_proxy = manager.create::<Bar>("Bar", &())?;
    let baz_proxy = manager.create::<Baz>("baz", &10)?;
    assert_eq!(foo_proxy.call(&FooMethod::F)?, Ok("f()".to_owned()));
    assert_eq!(foo_proxy.call(&FooMethod::G)?, Err("ValueError".to_owned()));
    assert_eq!(bar_proxy.call(&BarMethod::F)?, "f()");
    assert_eq!(bar_proxy.call(&BarMethod::H)?, "_h()");
    // foo_proxy._callmethod('_h'): RemoteError.
    manager.register("foo", &foo_proxy)?;
    let foo_as_bar: Remote<Bar> = manager.get("foo")?;
    assert!(matches!(
        foo_as_bar.call(&BarMethod::H),
        Err(flotilla::Error::InvalidOperation { .. })
    ));
    let squares: Vec<u32> = std::iter::from_fn(|| baz_proxy.call(&()).unwrap()).collect();
    assert_eq!(squares, (0..10).map(|i| i * i).collect::<Vec<_>>());
    Ok(())
}

/// `_TestMyManager::test_mymanager`: started, used, shut down; the server exits cleanly.
#[test]
fn test_mymanager() -> Result<(), flotilla::Error> {
    let mut manager = Manager::builder().server(MyManagerTask).start()?;
    common(&manager)?;
    manager.shutdown()?;
    Ok(())
}

/// `_TestMyManager::test_mymanager_context`: dropping the manager is leaving `with`.
#[test]
fn test_mymanager_context() -> Result<(), flotilla::Error> {
    let manager = Manager::builder().server(MyManagerTask).start()?;
    common(&manager)?;
    let foo_proxy = manager.create::<Foo>("Foo", &())?;
    drop(manager);
    assert!(foo_proxy.call(&FooMethod::F).unwrap_err().is_disconnected());
    Ok(())
}

type Values = (
    String,
    Option<()>,
    bool,
    f64,
    String,
    String,
    serde_bytes::ByteBuf,
);

fn values() -> Values {
    (
        "hello world".to_owned(),
        None,
        true,
        2.25,
        "hall\u{e5} v\u{e4}rlden".to_owned(),
        "\u{43f}\u{440}\u{438}\u{432}\u{456}\u{442} \u{441}\u{432}\u{456}\u{442}".to_owned(),
        serde_bytes::ByteBuf::from(b"hall\xe5 v\xe4rlden".to_vec()),
    )
}

/// `_TestRemoteManager._putter`: connects with only the address and key, puts the values.
#[flotilla::task]
fn putter(address: flotilla::manager::Address, authkey: Vec<u8>) {
    let manager = Manager::connect(address, &authkey).unwrap();
    let queue: Queue<Values> = manager.get("get_queue").unwrap();
    queue.put(values()).unwrap();
}

/// `_TestRemoteManager::test_remote`.
#[test]
fn test_remote() -> Result<(), flotilla::Error> {
    let authkey = b"0123456789abcdef0123456789abcdef".to_vec();
    let manager = Manager::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .authkey(authkey.clone())
        .start()?;
    manager.register("get_queue", &manager.queue::<Values>(None)?)?;
    let p = Process::new(PutterTask, (manager.address().clone(), authkey.clone())).start()?;
    let manager2 = Manager::connect(manager.address().clone(), &authkey)?;
    let queue: Queue<Values> = manager2.get("get_queue")?;
    let got = queue.get_timeout(PATIENCE).unwrap();
    assert_eq!(got, values());
    assert!(p.join_timeout(PATIENCE));
    assert_eq!(p.exitcode(), Some(0));
    Ok(())
}

/// `_TestRemoteManager` with a registered type: a client that connected over TCP makes
/// objects of the server's types too.
#[test]
fn test_remote_registered_type() -> Result<(), flotilla::Error> {
    let manager = Manager::builder()
        .server(MyManagerTask)
        .listen("127.0.0.1:0".parse().unwrap())
        .start()?;
    let remote = Manager::connect(manager.address().clone(), manager.authkey())?;
    let bar = remote.create::<Bar>("Bar", &())?;
    assert_eq!(bar.call(&BarMethod::H)?, "_h()");
    Ok(())
}
