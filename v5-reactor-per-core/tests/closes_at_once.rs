//! The README's first demo on v5's loops (and so v4's and v4-syscalls' readiness loops): a client that sends `exit` and nothing after
//! it is closed at once; one with more input behind it still gets the lingering close
//! (the scenarios are `common::testkit::closing`'s).

use common::cli::{Sharing, listen};
use common::testkit::{TestServer, closing};
use v5_reactor_per_core::{Config, Model, SERVER, run};

fn server() -> TestServer {
    let listener = listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort);
    let dispatcher = common::Dispatcher::with_builtin_routes(SERVER);
    TestServer::on_listener(
        listener.expect("bind"),
        dispatcher,
        Config::new(Model { loops: 1, ..Model::default() }),
        run,
    )
}

#[test]
fn exit_with_nothing_behind_it_closes_at_once() {
    closing::exit_with_nothing_behind_it_closes_at_once(&server());
}

#[test]
fn exit_with_more_behind_it_lingers_until_the_client_closes() {
    closing::exit_with_more_behind_it_lingers_until_the_client_closes(&server());
}
