//! [`current_process`]: who this process is, as Python's `multiprocessing.current_process()`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// This process's identity, set once when a child process or pool worker starts.
#[derive(Debug)]
pub(crate) struct Identity {
    /// The process's name.
    pub(crate) name: String,
    /// Its position in the process tree, as Python's `_identity`: `"2"` for the second
    /// process started by the main process, `"2:1"` for the first one that one started.
    pub(crate) path: String,
    /// Whether it dies with its parent.
    pub(crate) daemon: bool,
    /// The pid and name of the process that started it, for
    /// [`parent_process`](super::parent_process); `None` for a pool worker.
    pub(crate) parent: Option<(u32, String)>,
}

static IDENTITY: OnceLock<Identity> = OnceLock::new();

/// How many processes this process has created so far.
static CREATED: AtomicU32 = AtomicU32::new(0);

/// Records this process's identity; called once, before any user code runs.
pub(crate) fn set(identity: Identity) {
    let _ = IDENTITY.set(identity);
}

/// The pid and name of the process that started this one, if a `Process::start` did.
pub(crate) fn parent() -> Option<(u32, String)> {
    IDENTITY.get()?.parent.clone()
}

/// The default name and the tree path of the next process this process creates.
pub(crate) fn next_child() -> (String, String) {
    let n = CREATED.fetch_add(1, Ordering::Relaxed) + 1;
    let path = match IDENTITY.get() {
        Some(me) if !me.path.is_empty() => format!("{}:{n}", me.path),
        _ => n.to_string(),
    };
    (format!("Process-{path}"), path)
}

/// The process this code runs in: Python's `multiprocessing.current_process()`.
///
/// In the program's own process it is named `"MainProcess"`; in a child started by
/// [`Process::start`](super::Process::start) it carries that [`Process`](super::Process)'s
/// name and daemon flag; in a process-pool worker it is named `"PoolWorker-<pid>"`.
///
/// # Examples
///
/// ```
/// use flotilla::process::current_process;
///
/// let me = current_process();
/// assert_eq!(me.name(), "MainProcess");
/// assert_eq!(me.pid(), std::process::id());
/// assert!(!me.daemon());
/// ```
pub fn current_process() -> CurrentProcess {
    let (name, daemon) = match IDENTITY.get() {
        Some(me) => (me.name.clone(), me.daemon),
        None => ("MainProcess".to_owned(), false),
    };
    CurrentProcess {
        name,
        pid: std::process::id(),
        daemon,
    }
}

/// What [`current_process`] returns: the name, id and daemon flag of the running process.
///
/// # Examples
///
/// ```
/// let me = flotilla::process::current_process();
/// println!("{} ({}), daemon: {}", me.name(), me.pid(), me.daemon());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
    daemon: bool,
}

impl CurrentProcess {
    /// The process's name: `"MainProcess"`, or the name its [`Process`](super::Process) was
    /// given.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(flotilla::process::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(flotilla::process::current_process().pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is a daemon, killed when its parent dies.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!flotilla::process::current_process().daemon());
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }
}
