//! [`Error`]: what stops a whole run. A single image's failure is not an error of the run: it is
//! a [`Failure`](crate::Failure) in the [`Report`](crate::Report).

use std::io;
use std::path::PathBuf;

/// Why a run could not start or could not go on. Failures of single images never end a run;
/// they are listed in the report instead.
///
/// # Examples
///
/// ```
/// use thumbnails::Config;
///
/// let err = Config::builder("out").sizes([0]).build().unwrap_err();
/// assert!(err.to_string().contains("width"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong, in words a user can act on.
        reason: String,
    },
    /// An input file or directory named on the command line cannot be read.
    #[error("cannot read input {}: {source}", .path.display())]
    Input {
        /// The path given.
        path: PathBuf,
        /// The operating system's complaint.
        #[source]
        source: io::Error,
    },
    /// The output directory cannot be created or used.
    #[error("cannot use output directory {}: {source}", .path.display())]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's complaint.
        #[source]
        source: io::Error,
    },
    /// Something the run needs could not be set up (the async runtime, the HTTP client, the
    /// demo's server).
    #[error("could not set up {what}: {reason}")]
    Setup {
        /// What could not be set up.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The executor refused work or could not be built.
    #[error("the resize executor failed: {0}")]
    Executor(#[from] flotilla::Error),
}

impl Error {
    pub(crate) fn config(reason: impl Into<String>) -> Error {
        Error::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn setup(what: &'static str, reason: impl std::fmt::Display) -> Error {
        Error::Setup {
            what,
            reason: reason.to_string(),
        }
    }
}
