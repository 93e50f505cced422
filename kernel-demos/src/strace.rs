//! What `strace -f -ttt -T` prints, read back: each system call of each thread with when
//! it began and ended, so that a sequence diagram can be drawn from a real server's calls.
//!
//! A call that blocks while another thread makes one is printed in two pieces, `NAME(args
//! <unfinished ...>` when it begins and `<... NAME resumed>rest) = ret <secs>` when it
//! ends; a call that does not is one line. Lines of other kinds (signals, exits) are
//! skipped.

use std::collections::HashMap;
use std::time::Duration;

/// One system call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub tid: u32,
    pub name: String,
    /// Since the Unix epoch, as strace's `-ttt` prints it.
    pub start: Duration,
    pub end: Duration,
    /// The arguments as printed (both pieces of a split call joined).
    pub args: String,
    /// What it returned, as printed (`84`, `-1 EAGAIN (...)`).
    pub ret: String,
}

impl Call {
    /// The first argument: a descriptor, or a futex's address.
    pub fn first_arg(&self) -> &str {
        self.args.split([',', ')']).next().unwrap_or("").trim()
    }

    /// What it returned as a number, if it did.
    pub fn returned(&self) -> Option<i64> {
        self.ret.split_whitespace().next()?.parse().ok()
    }
}

/// `1765000000.123456` as a duration since the epoch.
fn seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.')?;
    let micros: u64 = format!("{fraction:0<6}").get(..6)?.parse().ok()?;
    Some(Duration::from_secs(whole.parse().ok()?) + Duration::from_micros(micros))
}

/// `... = 84 <0.000004>`: the return value and the call's length.
fn result(tail: &str) -> Option<(String, Duration)> {
    let (before, length) = tail.rsplit_once(" <")?;
    let length = seconds(length.strip_suffix('>')?)?;
    let (_, ret) = before.rsplit_once(") = ")?;
    Some((ret.trim().to_owned(), length))
}

/// Every system call in `text`, in the order they ended.
pub fn parse(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    // A call begun and not yet ended, per thread: its name, start and first arguments.
    let mut pending: HashMap<u32, (String, Duration, String)> = HashMap::new();
    for line in text.lines() {
        // strace pads the tid to a width: fields are split by runs of spaces.
        let Some((tid, rest)) = line.trim_start().split_once(' ') else { continue };
        let Some((time, rest)) = rest.trim_start().split_once(' ') else { continue };
        let (Ok(tid), Some(at)) = (tid.parse::<u32>(), seconds(time)) else { continue };
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else { continue };
            let Some((begun_name, start, args)) = pending.remove(&tid) else { continue };
            let Some((ret, _)) = result(tail) else { continue };
            let args = format!("{args}{}", tail.rsplit_once(") = ").map_or("", |(a, _)| a));
            debug_assert_eq!(begun_name, name);
            calls.push(Call { tid, name: name.to_owned(), start, end: at, args, ret });
        } else if let Some((call, _)) = rest.split_once(" <unfinished ...>") {
            let Some((name, args)) = call.split_once('(') else { continue };
            pending.insert(tid, (name.to_owned(), at, args.to_owned()));
        } else if let Some((name, args)) = rest.split_once('(') {
            let Some((ret, length)) = result(args) else { continue };
            let args = args.rsplit_once(") = ").map_or("", |(a, _)| a).to_owned();
            calls.push(Call { tid, name: name.to_owned(), start: at, end: at + length, args, ret });
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
27657  1765021680.272181 epoll_wait(6, [{events=EPOLLIN, data={u32=1, u64=1}}], 1024, 500) = 1 <0.000003>
27657 1765021680.272198 futex(0x5617cec92aa8, FUTEX_WAKE_PRIVATE, 1) = 1 <0.000008>
27656 1765021680.272225 futex(0x5617cec92628, FUTEX_WAKE_PRIVATE, 1 <unfinished ...>
27657 1765021680.272232 epoll_wait(6,  <unfinished ...>
27656 1765021680.272243 <... futex resumed>) = 1 <0.000015>
27656 1765021680.272593 recvfrom(8, \"GET /hello HTTP/1.1\\r\\nHost: 127.0\"..., 16384, 0, NULL, NULL) = 84 <0.000004>
27657 1765021680.274222 <... epoll_wait resumed>[{events=EPOLLIN|EPOLLRDHUP, data={u32=1, u64=1}}], 1024, 500) = 1 <0.001981>
27656 1765021680.290000 +++ exited with 0 +++
";

    #[test]
    fn whole_and_split_calls_are_read_with_their_times() {
        let calls = parse(SAMPLE);
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["epoll_wait", "futex", "futex", "recvfrom", "epoll_wait"]);
        let wake = &calls[1];
        assert_eq!(
            (wake.tid, wake.first_arg(), wake.returned()),
            (27657, "0x5617cec92aa8", Some(1))
        );
        assert_eq!(wake.end - wake.start, Duration::from_micros(8));
        let split = &calls[4];
        assert_eq!(split.end - split.start, Duration::from_micros(274_222 - 272_232));
        assert!(split.args.starts_with("6, [{events=EPOLLIN|EPOLLRDHUP"), "{}", split.args);
        assert_eq!(calls[3].returned(), Some(84));
    }
}
