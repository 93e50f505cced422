//! What the fault matrix speaks in, below both the faults and the probes: how a fault
//! needs its server started ([`Setup`]), and what a server did about it ([`Outcome`]).
//! The probes report outcomes and the faults table expects them, so neither file imports
//! the other for them.

/// How a fault needs the server started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Plain,
    /// With at most this many file descriptors.
    FdLimit(u64),
    /// With `--allow-abort`, so `GET /abort` aborts the process (and no core dump).
    AllowAbort,
}

/// What a server did about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client was served correctly.
    Served,
    /// The client got a clear error with this status, and the connection was closed.
    Rejected(u16),
    /// The client got this status, and the connection went on serving it.
    Answered(u16),
    /// The server closed the client's connection at a deadline; others were served
    /// meanwhile.
    CutOff,
    /// The server closed the client's connection at a deadline, and others waited until
    /// then.
    CutOffOthersWaited,
    /// Others were served meanwhile, but the client kept one of the server's threads (or
    /// processes) until it left.
    HeldAThread,
    /// Others waited until the client left, then were served.
    OthersWaited,
    /// The client broke its own connection; the server let it go.
    Dropped,
    /// The server neither spun nor exited, and served again once the fault ended.
    Recovered,
    /// The whole server process died, and every client with it.
    Died,
}

impl Outcome {
    pub fn label(self) -> String {
        match self {
            Outcome::Served => "served".into(),
            Outcome::Rejected(status) => format!("{status}, then closed"),
            Outcome::Answered(status) => format!("{status}; the connection goes on"),
            Outcome::CutOff => "cut off at a deadline".into(),
            Outcome::CutOffOthersWaited => "cut off at a deadline; others wait till then".into(),
            Outcome::HeldAThread => "others served; it holds a thread".into(),
            Outcome::OthersWaited => "others wait until it leaves".into(),
            Outcome::Dropped => "dropped; others served".into(),
            Outcome::Recovered => "no spin, no exit; recovers".into(),
            Outcome::Died => "the process dies, every client with it".into(),
        }
    }
}
