//! peer-hyper: a reference server, not a version. `GET /hello` over HTTP/1.1 on hyper and
//! a tokio multi-threaded runtime, a task per connection: v6's design as a Rust user
//! would build it with the ecosystem's HTTP library, so v6 (and the event loops) can be
//! measured beside it in one run. It speaks only HTTP and knows only `/hello`; everything
//! else gets 404.
//!
//! Run it with `cargo run --release -p peer-hyper -- --addr 127.0.0.1:8090`; like the
//! versions, it prints `peer-hyper listening on <addr>` once it listens. `loadgen compare
//! --peers` runs it as `loadgen serve peer-hyper`, built with loadgen in the same profile
//! as the versions.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The name it prints and sends in its `Server` header.
pub const SERVER: &str = "peer-hyper";

/// Its options.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,

    /// Runtime worker threads, one per core by default
    #[arg(long, value_name = "N", default_value_t = common::server::cores(),
          value_parser = common::cli::thread_count())]
    pub workers: usize,
}

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match request.uri().path() {
        "/hello" => (StatusCode::OK, "Hello, World!"),
        _ => (StatusCode::NOT_FOUND, "no such route: peer-hyper knows only /hello"),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("server", SERVER)
        .body(Full::new(Bytes::from_static(body.as_bytes())));
    // Every part above is a constant that `Builder` accepts; should it ever refuse one,
    // the client still gets an answer.
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"")))))
}

/// Serves until the process is killed.
pub fn serve(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(async {
        let listener =
            TcpListener::bind(args.addr).await.with_context(|| format!("bind {}", args.addr))?;
        println!("{SERVER} listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors, or a client that gave up: wait a moment, go on.
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(hello));
                // A client that resets or sends garbage ends its own connection only.
                let _ = connection.await;
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::Args,
    }

    /// `--workers` reads as v6's: one per core unless told, and 0 refused by clap rather
    /// than taken for 1.
    #[test]
    fn workers_default_to_the_cores_and_refuse_zero() {
        let cli = Cli::try_parse_from(["peer-hyper"]).expect("no option is required");
        assert_eq!(cli.args.workers, common::server::cores());
        let refused = Cli::try_parse_from(["peer-hyper", "--workers", "0"]).err();
        assert_eq!(refused.map(|e| e.kind()), Some(clap::error::ErrorKind::ValueValidation));
    }
}
