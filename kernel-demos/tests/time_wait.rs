//! TIME_WAIT, asserted: it stays with the side that closes first.

use kernel_demos::time_wait::{self, Closer, Options};

#[test]
fn the_side_that_closes_first_keeps_the_time_wait() {
    let connections = 200;
    let outcome = time_wait::run(&Options { connections }).expect("run the connections");
    println!("{outcome}");
    let (most, few) = (connections as u64 * 9 / 10, connections as u64 / 10);
    let server = outcome.run(Closer::Server).unwrap().count;
    assert!(server.local >= most && server.remote <= few, "server first\n{outcome}");
    let client = outcome.run(Closer::Client).unwrap().count;
    assert!(client.remote >= most && client.local <= few, "client first\n{outcome}");
}

/// The recorded conversations draw the TIME_WAIT on the first closer's lifeline (0 the
/// client, 1 the server), and the lingering close keeps the reply a plain close loses.
#[test]
fn the_diagrams_put_time_wait_on_the_first_closer_and_the_reset_loses_bytes() {
    use kernel_demos::linger::{self, Ending};
    use kernel_demos::sequence::Item;
    let figure = time_wait::sequence().expect("record both closes");
    let text = figure.text();
    let holders: Vec<Option<usize>> = figure
        .panels
        .iter()
        .map(|panel| {
            panel.items.iter().find_map(|item| match item {
                Item::Span { on, label, .. } if label.starts_with("TIME_WAIT") => Some(*on),
                _ => None,
            })
        })
        .collect();
    assert_eq!(holders, [Some(1), Some(0)], "server first, then client first\n{text}");

    let labels = |ending| {
        let panel = linger::record(ending).expect("record a close");
        panel.items.iter().map(|item| format!("{item:?}")).collect::<Vec<_>>().join("\n")
    };
    let lingering = labels(Ending::ClientCloses);
    assert!(
        lingering.contains("reply (1024 KiB)") && lingering.contains("FIN (shutdown)"),
        "{lingering}"
    );
    let plain = labels(Ending::PlainClose);
    // The kernel had taken the whole reply, and the reset threw away what it had not sent.
    assert!(
        plain.contains("RST: input unread") && plain.contains("then connection reset"),
        "{plain}"
    );
}
