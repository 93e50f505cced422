//! `loadgen timeline`: what each thread of a server did over half a second of a small
//! fixed workload, drawn as an SVG. From a version of the workspace it starts with
//! `--trace`, from a trace file any server wrote in the same format, or, for a server
//! that writes none, from its threads' states and CPU time sampled in /proc.

use std::path::PathBuf;

use anyhow::{Context, bail};
use loadgen::measure::parse_addr;
use loadgen::serve::Version;
use loadgen::timeline::summary::Summary;
use loadgen::timeline::workload::Workload;
use loadgen::timeline::{Timeline, draw, sampled, trace};
use loadgen::timelines::{self, Taken};

/// What `--help` says after the options.
pub const EXPLAINED: &str = "\
The workload: four keep-alive clients asking /hello together every 25 ms, one asking
/sleep?ms=50 back to back, one idle connection, and a newcomer at 250 ms asking /hello once;
half a second in all. Connected in that order: one accepting thread numbers them 1-4, 5, 6, 7.
Examples:
  loadgen timeline --version v3-thread-pool --out v3.svg      (started with --threads 4)
  loadgen timeline --trace trace.json --out t.svg             (a trace any server wrote)
  loadgen timeline --addr 127.0.0.1:9000 --out mine.svg       (sampled from /proc)
Open the SVG in a browser; a trace file also opens in https://ui.perfetto.dev.";

#[derive(Debug, clap::Args)]
#[group(id = "source", required = true, args = ["server", "trace", "addr"])]
pub struct Args {
    /// Start this version of the workspace with --trace, run the workload, draw its trace
    #[arg(id = "server", long = "version", value_parser = Version::parser())]
    pub version: Option<Version>,
    /// The version's own options, as one string (default: a pool of 4 for v3, else the
    /// options its chapter suggests, e.g. "--loops 2")
    #[arg(long, requires = "server", conflicts_with_all = ["trace", "addr"], allow_hyphen_values = true)]
    pub server_args: Option<String>,
    /// Draw this trace (Chrome trace event format, as `--trace FILE` writes it)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["server", "addr"])]
    pub trace: Option<PathBuf>,
    /// A running server that records nothing: run the workload against it and draw its
    /// threads as /proc shows them
    #[arg(long, value_parser = parse_addr, conflicts_with = "server")]
    pub addr: Option<std::net::SocketAddr>,
    /// The server's process, when it is not the one listening on --addr's port
    #[arg(long, requires = "addr")]
    pub pid: Option<u32>,
    /// Where to write the picture
    #[arg(long, default_value = "timeline.svg")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // `load`: what the picture was taken under, when the workload is ours, drawn under the
    // sentence so that the picture alone says what was measured.
    let (title, caption, load, timeline) = if let Some(version) = args.version {
        let words: Vec<String> = match &args.server_args {
            Some(words) => words.split_whitespace().map(str::to_owned).collect(),
            None => timelines::teaching_args(version),
        };
        let dir = std::env::temp_dir().join(format!("loadgen-timeline-{}", std::process::id()));
        let taken = timelines::take(version, &words, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let taken = taken?;
        print_ran(&taken);
        (timelines::title(version, &words), taken.caption, Some(taken.workload), taken.timeline)
    } else if let Some(file) = &args.trace {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let timeline = trace::read(&text).with_context(|| file.display().to_string())?;
        let caption = match Version::named(&timeline.process) {
            Some(version) => timelines::caption(version),
            None => format!(
                "{}: a lane per thread, a bar for each thing it did, coloured by what it was \
                 (thin grey: waiting), the connection it served under it, and an arrow where \
                 one thread handed work to another.",
                if timeline.process.is_empty() { "The server" } else { &timeline.process }
            ),
        };
        (format!("{}: what each thread did", file.display()), caption, None, timeline)
    } else if let Some(addr) = args.addr {
        let pid = match args.pid {
            Some(pid) => pid,
            None => loadgen::census::listener_pid(addr.port())?.with_context(|| {
                format!("no process of this machine listens on {addr}; give --pid")
            })?,
        };
        let workload = Workload::new(addr);
        let (timeline, ran) = sampled::under_workload(pid, &workload)?;
        println!("{} requests answered; {}", ran.answered, failures(&ran.failures));
        let caption = sampled::caption(&timeline.process);
        (
            format!("{} (pid {pid}, sampled): what each thread did", timeline.process),
            caption,
            Some(workload.describe()),
            timeline,
        )
    } else {
        bail!("give --version, --trace or --addr");
    };
    if timeline.spans.is_empty() {
        bail!("nothing to draw: the timeline has no spans (did any request reach the server?)");
    }
    let drawn = match &load {
        Some(load) => timelines::with_load(&caption, load),
        None => caption.clone(),
    };
    std::fs::write(&args.out, draw::svg(&timeline, &title, &drawn))
        .with_context(|| format!("writing {}", args.out.display()))?;
    print_summary(&timeline);
    println!("{caption}");
    println!("wrote {}", args.out.display());
    Ok(())
}

fn failures(failures: &[String]) -> String {
    if failures.is_empty() { "every client was answered".into() } else { failures.join("; ") }
}

fn print_ran(taken: &Taken) {
    println!("{} with {}", taken.version.name(), workload_line());
    let newcomer = taken.newcomer_ms.map_or("no answer".into(), |ms| format!("{ms:.1} ms"));
    println!(
        "{} requests answered, the newcomer waited {newcomer}; {}",
        taken.answered,
        failures(&taken.failures)
    );
}

fn workload_line() -> String {
    // The address is not part of the description.
    Workload::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).describe()
}

fn print_summary(timeline: &Timeline) {
    let Summary {
        lanes,
        busy_lanes,
        connections,
        most_lanes_per_connection,
        handoffs,
        handler_lanes,
        most_reaped,
        ..
    } = loadgen::timeline::summary::summarize(timeline);
    if let Some(n) = most_reaped {
        println!("the most completions one reap took: {n}");
    }
    println!(
        "{lanes} threads drawn ({busy_lanes} worked), {connections} connections (each on at most \
         {most_lanes_per_connection} threads), {handoffs} hand-offs, handlers ran on \
         {handler_lanes} threads, {:.0} ms",
        timeline.length_us / 1000.0
    );
}
