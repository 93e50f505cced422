//! The error type of `common`'s fallible set-up calls.

use std::fmt;
use std::io;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum Error {
    /// The listening socket could not be opened.
    Bind {
        addr: SocketAddr,
        source: io::Error,
    },
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the port is taken (is this version already \
                 running?); stop the other server or pick a free port with --addr"
            ),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } | Self::Io(source) => Some(source),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
