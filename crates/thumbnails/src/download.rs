//! Downloads: streamed to disk, with timeouts, a size cap, and retries with exponential backoff
//! for the failures that a retry can fix (connection errors, timeouts, 5xx and 429 answers).

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::error::Error;
use crate::report::FailureKind;
use crate::resize::{io_reason, is_disk_full};

/// The first pause before a retry; each further retry waits twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Why a download failed, in words.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error("not a usable URL: {0}")]
    BadUrl(String),
    #[error("the server answered {status}")]
    Status { status: StatusCode, retry: bool },
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("the transfer broke off: {0}")]
    Transfer(String),
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("could not save the download: {reason}")]
    Save { reason: String, disk_full: bool },
}

/// A download that failed after `attempts` tries.
#[derive(Debug)]
pub(crate) struct FetchFailure {
    pub(crate) error: DownloadError,
    pub(crate) attempts: u32,
}

impl DownloadError {
    fn retryable(&self) -> bool {
        match self {
            DownloadError::Status { retry, .. } => *retry,
            DownloadError::Connect(_) | DownloadError::Timeout(_) | DownloadError::Transfer(_) => {
                true
            }
            DownloadError::BadUrl(_)
            | DownloadError::TooLarge { .. }
            | DownloadError::Save { .. } => false,
        }
    }

    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            DownloadError::BadUrl(_) => FailureKind::BadUrl,
            DownloadError::Status { .. } => FailureKind::HttpStatus,
            DownloadError::Connect(_) => FailureKind::Connect,
            DownloadError::Timeout(_) => FailureKind::Timeout,
            DownloadError::Transfer(_) => FailureKind::Transfer,
            DownloadError::TooLarge { .. } => FailureKind::TooLarge,
            DownloadError::Save {
                disk_full: true, ..
            } => FailureKind::DiskFull,
            DownloadError::Save { .. } => FailureKind::Io,
        }
    }

    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            DownloadError::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }
}

/// An HTTP client set up for a run.
#[derive(Debug, Clone)]
pub(crate) struct Downloader {
    client: reqwest::Client,
    retries: u32,
    max_bytes: u64,
}

impl Downloader {
    pub(crate) fn new(
        timeout: Duration,
        retries: u32,
        max_bytes: u64,
    ) -> Result<Downloader, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("thumbnails/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::setup("the HTTP client", err))?;
        Ok(Downloader {
            client,
            retries,
            max_bytes,
        })
    }

    /// Downloads `url` to `dest`, retrying what can be retried; returns the size in bytes. On
    /// failure `dest` is removed.
    pub(crate) async fn fetch(&self, url: &str, dest: &Path) -> Result<u64, FetchFailure> {
        let bad = |error| FetchFailure { error, attempts: 0 };
        let parsed =
            reqwest::Url::parse(url).map_err(|err| bad(DownloadError::BadUrl(err.to_string())))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(DownloadError::BadUrl(format!(
                "the scheme `{}` is not supported (only http and https)",
                parsed.scheme()
            ))));
        }
        let mut attempt = 0;
        loop {
            let outcome = self.fetch_once(parsed.clone(), dest).await;
            match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(err) => {
                    let _ = tokio::fs::remove_file(dest).await;
                    if attempt >= self.retries || !err.retryable() {
                        return Err(FetchFailure {
                            error: err,
                            attempts: attempt + 1,
                        });
                    }
                    let pause = FIRST_BACKOFF * 2u32.saturating_pow(attempt);
                    tracing::debug!(url, attempt, ?pause, %err, "retrying download");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn fetch_once(&self, url: reqwest::Url, dest: &Path) -> Result<u64, DownloadError> {
        let response = self.client.get(url).send().await.map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status {
                status,
                retry: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
            });
        }
        if let Some(length) = response.content_length()
            && length > self.max_bytes
        {
            return Err(DownloadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let save = |err: std::io::Error| DownloadError::Save {
            reason: io_reason(&err),
            disk_full: is_disk_full(&err),
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(save)?;
        let mut total = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(request_error)?;
            total += chunk.len() as u64;
            if total > self.max_bytes {
                return Err(DownloadError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            file.write_all(&chunk).await.map_err(save)?;
        }
        file.flush().await.map_err(save)?;
        Ok(total)
    }
}

fn request_error(err: reqwest::Error) -> DownloadError {
    // reqwest's own message only repeats the URL ("error sending request for url (...)"); the
    // innermost cause says what went wrong ("Connection refused (os error 111)").
    let mut deepest: &dyn std::error::Error = &err;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    let reason = deepest.to_string();
    if err.is_timeout() {
        DownloadError::Timeout(reason)
    } else if err.is_connect() {
        DownloadError::Connect(reason)
    } else {
        DownloadError::Transfer(reason)
    }
}
