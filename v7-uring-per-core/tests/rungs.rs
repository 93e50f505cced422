//! The ladder's last rungs, each switched on alone on top of the defaults: direct
//! descriptors (every operation names the socket by its index in the ring's table),
//! receive bundles (the default), incremental buffer consumption; and the default with
//! bundles off, one buffer per completion. Each must serve exactly as the default does: a short request, a 64 KiB
//! body that crosses many buffers byte for byte, a long pipelined burst whose requests
//! straddle buffers, a client that resets in the middle of a request, the cap, the close
//! at once or lingering after `exit`, and the drain at the deadline; and `/stats` must say
//! it runs, refused by nothing.

use std::io::Write;

use common::cli::{Sharing, listen};
use common::testkit::{
    Client, NO_ANSWER_WAIT, TIMEOUT, TestServer, answered_within, closing, wait_until,
};
use v7_uring_per_core::{Config, Features, Model, SERVER, run};

/// The rungs under test, each the default with one switch on.
fn rungs() -> [(&'static str, Features); 4] {
    let on = Features::default();
    [
        ("direct_descriptors", Features { direct_descriptors: true, ..on }),
        ("recv_bundle", Features { recv_bundle: true, ..on }),
        ("buffer_inc", Features { buffer_inc: true, ..on }),
        ("plain_receives", Features { recv_bundle: false, ..on }),
    ]
}

fn server(features: Features, max_connections: usize) -> TestServer {
    let model = Model { rings: 1, features, max_connections, ..Model::default() };
    TestServer::start(SERVER, Config::new(model), run)
}

/// `/stats`'s `model`, as a client of `server` reads it.
fn model(client: &mut Client) -> serde_json::Value {
    let stats = client.get("/stats").expect("/stats");
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    stats["model"].clone()
}

#[test]
fn each_rung_answers_and_says_it_runs() {
    for (name, features) in rungs() {
        let server = server(features, 64);
        let mut c = Client::connect(server.addr()).expect("connect");
        assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!", "{name}");
        let model = model(&mut c);
        let said = &model["features"];
        assert_eq!(said["direct_descriptors"], features.direct_descriptors, "{name}: {model}");
        assert_eq!(said["recv_bundle"], features.recv_bundle, "{name}: {model}");
        assert_eq!(said["buffer_inc"], features.buffer_inc, "{name}: {model}");
        assert_eq!(model["rings"][0]["refused"], serde_json::json!([]), "{name}: {model}");
        let size = if features.buffer_inc { 64 * 1024 } else { 4096 };
        assert_eq!(model["rings"][0]["buffer_size"], size, "{name}: {model}");
    }
}

/// 64 KiB, sixteen 4 KiB buffers' worth (or, consumed incrementally, most of one and the
/// start of the next), comes back byte for byte; with bundles, at least one completion
/// covered several buffers.
#[test]
fn a_64_kib_echo_crosses_many_buffers_whole() {
    for (name, features) in rungs() {
        let server = server(features, 64);
        let mut c = Client::connect(server.addr()).expect("connect");
        for round in 0..4 {
            let body: Vec<u8> = (0..64 * 1024).map(|i| ((i + round) % 251) as u8).collect();
            let head =
                format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
            c.send(head.as_bytes()).expect("send the head");
            c.send(&body).expect("send the body");
            let echoed = c.read_response().expect("the echo");
            assert!(echoed.body == body, "{name}: round {round}'s 64 KiB came back changed");
        }
        if features.recv_bundle {
            assert!(server.model("bundles") >= 1, "{name}: no completion covered two buffers");
        }
    }
}

/// Four thousand requests in one stream (some 90 KB: past a 64 KiB buffer too), written
/// while the answers are read: every request is answered, in order, whichever buffers
/// its bytes were split across.
#[test]
fn pipelined_requests_split_across_buffers_are_answered_in_order() {
    const COUNT: usize = 4000;
    for (name, features) in rungs() {
        let server = server(features, 64);
        let mut c = Client::connect(server.addr()).expect("connect");
        let burst: String = (0..COUNT).map(|i| format!("GET /echo?msg=n{i:05}\n")).collect();
        let mut writer = c.stream().try_clone().expect("a second handle");
        let writing = std::thread::spawn(move || writer.write_all(burst.as_bytes()));
        for i in 0..COUNT {
            assert_eq!(c.read_line().expect("an answer"), format!("200 n{i:05}"), "{name}");
        }
        writing.join().expect("the writer panicked").expect("the burst written");
    }
}

/// A client that resets halfway through a request is closed, and frees its place: the
/// ring's connections go back to the one still open, which is still served.
#[test]
fn a_client_reset_mid_request_is_closed_and_the_rest_served() {
    for (name, features) in rungs() {
        let server = server(features, 64);
        let mut kept = Client::connect(server.addr()).expect("connect");
        assert_eq!(kept.line("GET /hello").expect("an answer"), "200 Hello, World!");
        let mut resetting = Client::connect(server.addr()).expect("connect");
        resetting
            .send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhal")
            .unwrap();
        assert!(
            wait_until(TIMEOUT, || server.model_once_registered("connections") == 2),
            "{name}: not taken in"
        );
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        nix::sys::socket::setsockopt(
            resetting.stream(),
            nix::sys::socket::sockopt::Linger,
            &linger,
        )
        .expect("SO_LINGER on a connected socket");
        drop(resetting);
        assert!(
            wait_until(TIMEOUT, || server.model_once_registered("connections") == 1),
            "{name}: kept open"
        );
        assert_eq!(kept.line("GET /hello").expect("an answer"), "200 Hello, World!", "{name}");
    }
}

/// At the cap of two, a third client waits unanswered (parked, or in the backlog) until
/// one of the two leaves; then it is served.
#[test]
fn the_cap_holds_a_newcomer_until_a_place_is_free() {
    for (name, features) in rungs() {
        let server = server(features, 2);
        let mut first = Client::connect(server.addr()).expect("connect");
        let mut second = Client::connect(server.addr()).expect("connect");
        for c in [&mut first, &mut second] {
            assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!", "{name}");
        }
        let mut third = Client::connect(server.addr()).expect("connect");
        third.send(b"GET /hello\n").expect("send");
        std::thread::sleep(NO_ANSWER_WAIT);
        assert!(!third.has_answer_waiting().expect("peek"), "{name}: served past the cap");
        drop(first);
        third.set_timeout(TIMEOUT).expect("a timeout");
        assert_eq!(third.read_line().expect("served once a place is free"), "200 Hello, World!");
        drop(second);
        assert!(answered_within(server.addr(), TIMEOUT), "{name}: a fourth not served");
    }
}

/// `exit` with nothing behind it closes at once; with more behind it, the write side is
/// shut (for a direct descriptor, by the ring's shutdown operation) and the connection
/// lingers until the client closes.
#[test]
fn exit_closes_at_once_or_lingers_as_the_default_does() {
    for (_, features) in rungs() {
        closing::exit_with_nothing_behind_it_closes_at_once(&server(features, 64));
        closing::exit_with_more_behind_it_lingers_until_the_client_closes(&server(features, 64));
    }
}

/// The drain: at the shutdown's deadline a client is still sending its request (its
/// receive armed, perhaps a buffer half filled), and the ring cancels it, reaps the
/// completion, closes the connection and stops, within the deadline.
#[test]
fn at_the_deadline_a_receive_in_flight_is_cancelled_and_the_connection_closed() {
    for (name, features) in rungs() {
        let server = server(features, 64);
        let mut sending = Client::connect(server.addr()).expect("connect");
        sending.send(b"GET /hello HTTP/1.1\r\n").expect("send");
        assert!(wait_until(TIMEOUT, || server.model_once_registered("connections") == 1), "{name}");
        server.check_stops_at_the_deadline();
        assert!(sending.is_closed_by_server(), "{name}: the connection outlived the server");
    }
}

/// A direct descriptor's place in the table is freed by the close of its index: with a
/// cap of 2, the table has room for 258, and 400 connections one after another are all
/// served (a place never freed would fail the 259th accept, the table full).
#[test]
fn closed_direct_descriptors_free_their_places_in_the_table() {
    let server = server(Features { direct_descriptors: true, ..Features::default() }, 2);
    for i in 0..400 {
        let mut c = Client::connect(server.addr()).expect("connect");
        assert_eq!(c.line("GET /hello").expect("an answer"), "200 Hello, World!", "client {i}");
        drop(c);
        assert!(wait_until(TIMEOUT, || server.model_once_registered("connections") == 0));
    }
}

/// Many connections at once on two rings with a small buf ring (64 buffers; consumed
/// incrementally, four of 64 KiB), bodies of sizes around the buffers' edges, some with a
/// request pipelined behind: every echo comes back byte for byte. Completions of several
/// connections interleave here, and consumed incrementally one buffer holds the bytes of
/// several of them, so bytes read at the wrong place would show as a changed body. (A
/// bundle's buffers found in ring order rather than by number is `buffers.rs`'s unit
/// test: here buffers go back in the order they came, so the two orders agree.)
#[test]
fn concurrent_echoes_through_a_small_buf_ring_come_back_whole() {
    const SIZES: [usize; 7] = [1, 100, 4095, 4096, 4097, 20_000, 65_536];
    for (name, features) in rungs() {
        let model = Model { rings: 2, buffers: 64, features, ..Model::default() };
        // Two rings: each binds its own socket beside this one (`SO_REUSEPORT`).
        let listener = listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort);
        let dispatcher = common::Dispatcher::with_builtin_routes(SERVER);
        let server =
            TestServer::on_listener(listener.expect("bind"), dispatcher, Config::new(model), run);
        let addr = server.addr();
        let clients: Vec<_> = (0..16)
            .map(|client| {
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr).expect("connect");
                    for round in 0..20 {
                        let size = SIZES[(client + round) % SIZES.len()];
                        let body: Vec<u8> = (0..size)
                            .map(|i| ((i * 7 + client * 13 + round) % 256) as u8)
                            .collect();
                        let head = format!(
                            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n"
                        );
                        let behind = if round % 3 == 0 {
                            "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                        } else {
                            ""
                        };
                        c.send(&[head.as_bytes(), &body, behind.as_bytes()].concat())
                            .expect("send");
                        let echoed = c.read_response().expect("the echo");
                        assert!(
                            echoed.body == body,
                            "client {client}, round {round}: {size} bytes changed"
                        );
                        if !behind.is_empty() {
                            assert_eq!(c.read_response().expect("hello").body, b"Hello, World!");
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap_or_else(|_| panic!("{name}: a client failed"));
        }
    }
}
