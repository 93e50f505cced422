//! The HTTP every small program speaks, checked on all eight at once (their `answer` is the
//! same function, copied): keep-alive by default on HTTP/1.1, a close after `Connection:
//! close`, after HTTP/1.0 and after a request announcing a body (never read), 400 (and a
//! close) for a request line that is not three words, 404 for any other request, and a
//! close when a head runs past 8 KiB without its blank line.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use support::{Server, assert_hello, read_reply};

const PROGRAMS: [&str; 8] = [
    env!("CARGO_BIN_EXE_blocking"),
    env!("CARGO_BIN_EXE_thread"),
    env!("CARGO_BIN_EXE_fork"),
    env!("CARGO_BIN_EXE_pool"),
    env!("CARGO_BIN_EXE_epoll"),
    env!("CARGO_BIN_EXE_per-core"),
    env!("CARGO_BIN_EXE_tasks"),
    env!("CARGO_BIN_EXE_uring"),
];

/// Sends `request` on a new connection and returns the reply.
fn ask(server: &Server, request: &str) -> (TcpStream, String) {
    let mut stream = server.connect();
    stream.write_all(request.as_bytes()).expect("send a request");
    let reply = read_reply(&mut stream).expect("a reply");
    (stream, reply)
}

/// Asserts the server closes `stream`: end of file, or a reset if it left bytes unread.
fn assert_closed(stream: &mut TcpStream, what: &str) {
    match stream.read(&mut [0; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{what}: not closed: {other:?}"),
    }
}

#[test]
fn every_program_speaks_the_same_small_http() {
    for program in PROGRAMS {
        let server = Server::start(program, &[]);
        let (mut kept, reply) = ask(&server, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_hello(&reply);
        assert!(!reply.contains("Connection: close"), "{program}: {reply}");
        kept.write_all(b"GET /nope HTTP/1.1\r\n\r\n").unwrap();
        let reply = read_reply(&mut kept).unwrap();
        assert!(reply.starts_with("HTTP/1.1 404 Not Found\r\n"), "{program}: {reply}");
        kept.write_all(b"GET /hello HTTP/1.1\r\n\r\n").unwrap(); // still open after a 404
        assert_hello(&read_reply(&mut kept).unwrap());
        drop(kept); // the blocking program serves no one else while it is open
        for (request, what) in [
            ("GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", "Connection: close"),
            ("GET /hello HTTP/1.0\r\n\r\n", "HTTP/1.0"),
            ("GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "a body announced"),
        ] {
            let (mut stream, reply) = ask(&server, request);
            assert_hello(&reply);
            assert!(reply.contains("\r\nConnection: close\r\n"), "{program}, {what}: {reply}");
            assert_closed(&mut stream, &format!("{program}, {what}"));
        }
        let (mut stream, reply) = ask(&server, "HELLO\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{program}: {reply}");
        assert_closed(&mut stream, &format!("{program}, a request line of one word"));
        let mut long = server.connect();
        long.write_all(&[b'a'; 9 * 1024]).unwrap();
        assert_closed(&mut long, &format!("{program}, a 9 KiB head"));
    }
}
