//! The one long-lived thread that forks every child process.
//!
//! Linux delivers a child's parent-death signal (`PR_SET_PDEATHSIG`) when the *thread* that
//! forked it exits, not the process. If a daemon child were forked by the caller's thread, it
//! would be killed as soon as that thread ended, while the parent lives on. So children are
//! forked here, by a thread that lives as long as the process: a daemon child then dies
//! exactly when its parent process does, however the parent dies (even by `SIGKILL`).

use std::io;
use std::process::{Child, Command};

use crossbeam_channel::{Sender, bounded, unbounded};

use flotilla_core::Error;
use flotilla_core::primitives::{Mutex, lock};

/// A command to spawn, and where to send the child.
type Job = (Command, Sender<io::Result<Child>>);

/// The spawner thread's inbox, once it runs.
static SPAWNER: Mutex<Option<Sender<Job>>> = Mutex::new(None);

/// Spawns `command` from the spawner thread, starting that thread on first use.
///
/// # Errors
///
/// [`Error::Spawn`] if the thread cannot be started or the command fails to spawn.
pub(crate) fn spawn(command: Command) -> Result<Child, Error> {
    let inbox = {
        let mut spawner = lock(&SPAWNER);
        match &*spawner {
            Some(inbox) => inbox.clone(),
            None => {
                let (inbox, jobs) = unbounded::<Job>();
                std::thread::Builder::new()
                    .name("flotilla-spawner".to_owned())
                    .spawn(move || {
                        for (mut command, reply) in jobs {
                            let _ = reply.send(command.spawn());
                        }
                    })
                    .map_err(|err| Error::Spawn {
                        reason: format!("could not start the spawner thread: {err}"),
                    })?;
                *spawner = Some(inbox.clone());
                inbox
            }
        }
    };
    let (reply, child) = bounded(1);
    let lost = || Error::Spawn {
        reason: "the spawner thread is gone".to_owned(),
    };
    inbox.send((command, reply)).map_err(|_| lost())?;
    child
        .recv()
        .map_err(|_| lost())?
        .map_err(|err| Error::Spawn {
            reason: format!("could not start a child process: {err}"),
        })
}
