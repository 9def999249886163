//! Why the index could not be opened, and what that means at start-up.

use std::path::{Path, PathBuf};

use super::FORMAT_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("opening handle index {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("handle index {path} has format {found}, this volnfs reads {FORMAT_VERSION}; it will be rebuilt")]
    Format { path: PathBuf, found: u64 },
}

/// What a failure to open the index means for the server starting up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// The file is not a usable index (garbage, truncated, another format):
    /// move it aside and rebuild it from the tree.
    Damaged,
    /// Another process has it open (a second server on the same state_dir).
    InUse,
    /// The file or its directory cannot be written (read-only, full, over
    /// quota, an I/O error): the file may be fine; leave it alone.
    Unwritable,
}

impl IndexError {
    pub fn failure(&self) -> OpenFailure {
        match self {
            IndexError::Format { .. } => OpenFailure::Damaged,
            IndexError::Open { source, .. } => match &**source {
                redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
                    OpenFailure::InUse
                }
                // redb reports a file that is not (or no longer) one of its
                // databases as InvalidData ("magic number mismatch") or a
                // short read; everything else from the OS is about writing.
                redb::Error::Io(e) => match e.kind() {
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        OpenFailure::Damaged
                    }
                    _ => OpenFailure::Unwritable,
                },
                redb::Error::PreviousIo => OpenFailure::Unwritable,
                _ => OpenFailure::Damaged,
            },
        }
    }
}

pub(super) fn open_err(path: &Path) -> impl Fn(redb::Error) -> IndexError + '_ {
    move |e| IndexError::Open {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}
