//! The scorecard: a [`Grade`] built once into sections of tables whose verdict cells say
//! what they are (passed, failed, not held against the server, not run), then rendered
//! for a terminal ([`terminal`], in colour when it is one) or as a page that needs nothing
//! else to open ([`html`], in the style of the compare report). The wording of every
//! stage lives here; the renderers know only sections, tables and verdicts.

mod html;
mod terminal;

use std::net::SocketAddr;
use std::path::PathBuf;

use super::transcript::Verdict;
use super::{Grade, matrix, versus};

/// The scorecard for a terminal (plain text; `color` adds ✔/✘ in colour).
pub fn terminal(grade: &Grade, color: bool) -> String {
    terminal::render(&Scorecard::of(grade), color)
}

/// The scorecard as an HTML page: the same stages, as tables.
pub fn html(grade: &Grade) -> String {
    html::render(&Scorecard::of(grade))
}

/// A grade as either renderer shows it.
#[derive(Debug)]
pub struct Scorecard {
    pub target: String,
    pub addr: SocketAddr,
    /// The grade in a sentence: the page's headline.
    pub verdict: String,
    /// One per stage, in order.
    pub sections: Vec<Section>,
    pub server_log: Option<PathBuf>,
    /// Whether every required stage passed.
    pub passed: bool,
}

/// One stage.
#[derive(Debug)]
pub struct Section {
    pub title: &'static str,
    /// What the stage found, or why it was not asked.
    pub found: Result<Found, String>,
}

/// What a stage found.
#[derive(Debug, Default)]
pub struct Found {
    /// How to read the tables: a clause, without its capital or its full stop.
    pub notes: Vec<String>,
    pub tables: Vec<Table>,
    /// What the tables add up to.
    pub findings: Vec<Finding>,
    /// Pictures (SVG), which only a page shows.
    pub pictures: Vec<String>,
}

/// A sentence whose point is the words in `strong` (a version's name).
#[derive(Debug)]
pub struct Finding {
    pub before: String,
    pub strong: String,
    pub after: String,
}

#[derive(Debug)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// A column: its title, and where its cells go on a terminal, which has no columns.
#[derive(Debug)]
pub struct Column {
    pub title: String,
    pub shown: Shown,
}

/// Where a column's cells go in a terminal's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The verdict's mark, first on the row's line.
    Mark,
    /// In brackets on the row's line: `[HTTP]`.
    Tag,
    /// On the row's line, the row's leads joined by `: `.
    Lead,
    /// What the verdict rests on: after the line, or under it for a failure.
    Detail,
    /// On a line of its own under the row.
    Under,
    /// In parentheses on a line of its own under the row.
    Aside,
    /// On a line of its own under the row, after the column's title.
    Titled,
}

#[derive(Debug)]
pub enum Cell {
    Text(String),
    Mark(Mark),
}

/// A row's verdict: its kind, and the word for it in this table.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub kind: Kind,
    pub word: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pass,
    Fail,
    /// Not asked, or not served: nothing held against the server.
    Skipped,
    /// Not run, because an earlier check failed.
    NotRun,
}

impl Kind {
    /// The mark a terminal shows for it; a page shows a pass's and a failure's before the word.
    pub fn glyph(self) -> &'static str {
        match self {
            Kind::Pass => "✔",
            Kind::Fail => "✘",
            Kind::Skipped => "–",
            Kind::NotRun => "·",
        }
    }
}

fn column(title: &str, shown: Shown) -> Column {
    Column { title: title.to_owned(), shown }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn mark(kind: Kind, word: &'static str) -> Cell {
    Cell::Mark(Mark { kind, word })
}

impl Scorecard {
    /// The scorecard of `grade`, worded once for both renderers.
    pub fn of(grade: &Grade) -> Self {
        Self {
            target: grade.target.clone(),
            addr: grade.addr,
            verdict: headline(grade),
            sections: vec![
                protocol(grade),
                model(grade),
                threads(grade),
                survival(grade),
                comparison(grade),
                knees(grade),
            ],
            server_log: grade.server_log.clone(),
            passed: grade.passed(),
        }
    }
}

/// The closest version, or why there is none.
fn closest(grade: &Grade) -> Finding {
    match grade.closest {
        Some(name) => Finding {
            before: "Behaves like ".into(),
            strong: name.into(),
            after: format!(": {}.", grade.why),
        },
        None => Finding {
            before: format!("Like no workspace version: {}.", grade.why),
            strong: String::new(),
            after: String::new(),
        },
    }
}

/// The grade in a sentence: the closest version, or why the server could not be graded.
fn headline(grade: &Grade) -> String {
    if grade.closest.is_none() && !grade.passed() {
        return format!("Not gradable: {}.", grade.why);
    }
    let Finding { before, strong, after } = closest(grade);
    before + &strong + &after
}

/// Stage 1: each conversation, and the bytes of a failed one.
fn protocol(grade: &Grade) -> Section {
    let rows = grade
        .transcripts
        .iter()
        .map(|check| {
            let (verdict, detail) = match &check.outcome {
                Verdict::Pass => (mark(Kind::Pass, "pass"), String::new()),
                Verdict::Fail(f) => (
                    mark(Kind::Fail, "fail"),
                    format!(
                        "sent:     {}\nexpected: {}\nreceived: {}",
                        f.sent, f.expected, f.received
                    ),
                ),
                Verdict::NotServed { why } => (mark(Kind::Skipped, "not served"), why.clone()),
                Verdict::NotRun => {
                    (mark(Kind::NotRun, "not run"), "an earlier one failed".to_owned())
                }
            };
            vec![verdict, text(check.protocol.name()), text(check.name), text(detail)]
        })
        .collect();
    let columns = vec![
        column("", Shown::Mark),
        column("protocol", Shown::Tag),
        column("conversation", Shown::Lead),
        column("bytes", Shown::Detail),
    ];
    let tables = vec![Table { columns, rows }];
    Section {
        title: "1. Does it speak the protocol?",
        found: Ok(Found { tables, ..Found::default() }),
    }
}

/// Stage 2: each question and its answer, then the closest version.
fn model(grade: &Grade) -> Section {
    let title = "2. What model is it?";
    let Some(f) = &grade.fingerprint else {
        return Section { title, found: Err(grade.why.clone()) };
    };
    let rows = f
        .answers
        .iter()
        .map(|a| vec![text(a.question), text(&a.answer), text(&a.evidence)])
        .collect();
    let columns = vec![
        column("question", Shown::Lead),
        column("answer", Shown::Under),
        column("what was seen", Shown::Aside),
    ];
    let found = Found {
        tables: vec![Table { columns, rows }],
        findings: vec![closest(grade)],
        ..Found::default()
    };
    Section { title, found: Ok(found) }
}

/// Stage 3: each fault, what the model found should do, and what happened.
fn survival(grade: &Grade) -> Section {
    let title = "3. What does it survive?";
    if let Some(why) = &grade.matrix_skipped {
        return Section { title, found: Err(why.clone()) };
    }
    // Failures first, the most serious first (see `matrix::Weight`); the rest in the
    // matrix's order.
    let mut ordered: Vec<&matrix::Row> = grade.matrix.iter().collect();
    ordered.sort_by_key(|row| match row.outcome {
        matrix::RowOutcome::Fail { .. } => (0, Some(row.weight)),
        _ => (1, None),
    });
    let rows = ordered
        .iter()
        .map(|row| {
            let (verdict, note) = match &row.outcome {
                matrix::RowOutcome::Pass => (mark(Kind::Pass, "as expected"), String::new()),
                matrix::RowOutcome::Fail { why } => {
                    (mark(Kind::Fail, "not as expected"), why.clone())
                }
                matrix::RowOutcome::Skipped { why } => {
                    (mark(Kind::Skipped, "not asked"), why.clone())
                }
            };
            // Tagged only where it failed: a pass needs no ranking.
            let failed = matches!(row.outcome, matrix::RowOutcome::Fail { .. });
            let weight = text(if failed { row.weight.words() } else { "" });
            vec![verdict, weight, text(row.describe), text(&row.expected), text(note)]
        })
        .collect();
    let columns = vec![
        column("", Shown::Mark),
        column("what it means", Shown::Tag),
        column("fault", Shown::Lead),
        column("expected of its model", Shown::Lead),
        column("what happened", Shown::Detail),
    ];
    let asked = grade
        .matrix
        .iter()
        .filter(|r| !matches!(r.outcome, matrix::RowOutcome::Skipped { .. }))
        .collect::<Vec<_>>();
    let passed = asked.iter().filter(|r| matches!(r.outcome, matrix::RowOutcome::Pass)).count();
    let found = Found {
        notes: vec![
            "each fault against a fresh server; the rows about slow clients expect it to close an idle\nconnection, or a request that has not arrived whole, within a few seconds"
                .into(),
        ],
        tables: vec![Table { columns, rows }],
        findings: vec![
            Finding {
                before: format!(
                    "{passed} of the {} faults asked handled as its model should",
                    asked.len()
                ),
                strong: String::new(),
                after: String::new(),
            },
            what_matters(&asked),
        ],
        pictures: vec![],
    };
    Section { title, found: Ok(found) }
}

/// Which failures to fix first: how many of each weight, in the order they matter.
fn what_matters(asked: &[&matrix::Row]) -> Finding {
    use matrix::Weight;
    let failed = |weight| {
        asked
            .iter()
            .filter(|r| matches!(r.outcome, matrix::RowOutcome::Fail { .. }) && r.weight == weight)
            .count()
    };
    let (lost, concurrency, detail) = (
        failed(Weight::CrashOrLostData),
        failed(Weight::Concurrency),
        failed(Weight::ProtocolDetail),
    );
    let before = if lost + concurrency + detail == 0 {
        "No failure to rank".to_owned()
    } else {
        format!(
            "Fix first the {lost} that crash it or lose an answer a client was owed, then the \
             {concurrency} about slow, idle, silent or too many clients (what its model is \
             about); the {detail} about HTTP's finer points matter least for the model"
        )
    };
    Finding { before, strong: String::new(), after: ".".into() }
}

/// Stage 4: each scenario on both servers, their ratios, and the newcomer beside idle
/// clients.
fn comparison(grade: &Grade) -> Section {
    let title = "4. How does it compare?";
    if let Some(why) = &grade.versus_skipped {
        return Section { title, found: Err(why.clone()) };
    }
    let Some(version) = &grade.versus_version else {
        return Section { title, found: Ok(Found::default()) };
    };
    let rows = grade
        .versus
        .iter()
        .map(|v| {
            let cpu = match (v.graded.cpu_us_per_request, v.version.cpu_us_per_request) {
                (Some(a), Some(b)) => versus::ratio(a, b),
                _ => "–".to_owned(),
            };
            vec![
                text(v.scenario),
                text(run(&v.graded)),
                text(run(&v.version)),
                text(versus::ratio(v.graded.requests_per_sec, v.version.requests_per_sec)),
                text(cpu),
            ]
        })
        .collect();
    let columns = vec![
        column("scenario", Shown::Lead),
        column("it", Shown::Titled),
        column(version, Shown::Titled),
        column("requests/s ratio", Shown::Titled),
        column("CPU/request ratio", Shown::Titled),
    ];
    let mut tables = vec![Table { columns, rows }];
    if let Some(idle) = &grade.idle {
        let scenario = format!(
            "idle clients and a newcomer: {} silent connections, then GET /hello given {:?}",
            versus::IDLE,
            versus::NEWCOMER_WAIT
        );
        let columns = vec![
            column("scenario", Shown::Lead),
            column("it", Shown::Titled),
            column(version, Shown::Titled),
        ];
        let row =
            vec![text(scenario), text(newcomer(idle.graded_us)), text(newcomer(idle.version_us))];
        tables.push(Table { columns, rows: vec![row] });
    }
    let notes = vec![format!(
        "against {version}, by turns in this run: only the ratios mean anything beyond this machine"
    )];
    Section { title, found: Ok(Found { notes, tables, ..Found::default() }) }
}

/// Beside stage 2: what each of its threads did, sampled from /proc.
fn threads(grade: &Grade) -> Section {
    let title = "What each thread did";
    let Some(t) = &grade.threads else {
        let why = grade.threads_skipped.clone().unwrap_or_else(|| "not run".into());
        return Section { title, found: Err(why) };
    };
    let s = &t.summary;
    let newcomer = t.newcomer_ms.map_or("no answer".into(), |ms| format!("{ms:.1} ms"));
    let mut notes = vec![
        "four keep-alive clients asking /hello every 25 ms, one asking /sleep?ms=50, one idle \
         connection and a newcomer half-way, for half a second"
            .to_owned(),
        format!(
            "{} threads seen, {} of them on a CPU at some point; {} requests answered, the \
             newcomer's in {newcomer}",
            s.lanes, s.busy_lanes, t.answered
        ),
    ];
    if !t.failures.is_empty() {
        notes.push(format!("clients that gave up: {}", t.failures.join("; ")));
    }
    notes.push(t.caption.trim_end_matches('.').to_owned());
    let found = Found { notes, pictures: vec![t.svg.clone()], ..Found::default() };
    Section { title, found: Ok(found) }
}

/// Stage 5: its knee beside the closest version's, and what Little's law predicts.
fn knees(grade: &Grade) -> Section {
    let title = "5. Where does it stop keeping up?";
    let Some(k) = &grade.knees else {
        let why = grade.knees_skipped.clone().unwrap_or_else(|| "not run".into());
        return Section { title, found: Err(why) };
    };
    let version = &k.against;
    let columns = vec![column("server", Shown::Lead), column("knee", Shown::Under)];
    let rows = vec![
        vec![text("it"), text(k.graded.describe())],
        vec![text(version), text(k.version.describe())],
    ];
    let predicted = match k.predicted {
        Some(rate) => {
            format!("Little's law predicts {rate:.0} req/s for it ({})", k.predicted_from)
        }
        None => "no count bounds it: a server per job is bounded by the CPU".into(),
    };
    let ratio = match (k.graded.knee, k.version.knee) {
        (Some(a), Some(b)) => format!("{} the closest version's", versus::ratio(a, b)),
        _ => "no ratio: one of them kept the SLO at no step".into(),
    };
    let notes = vec![
        format!(
            "{}; the knee is the highest offered rate whose p99 stayed within {}",
            k.workload,
            crate::measure::fmt_us(k.slo_us)
        ),
        format!("beside {version}: {predicted}"),
    ];
    let findings = vec![Finding {
        before: format!("Its knee is {ratio}"),
        strong: String::new(),
        after: ".".into(),
    }];
    let tables = vec![Table { columns, rows }];
    Section { title, found: Ok(Found { notes, tables, findings, ..Found::default() }) }
}

/// One server's run, in a cell.
fn run(run: &versus::Run) -> String {
    let cpu = run.cpu_us_per_request.map_or("–".to_owned(), |us| format!("{us:.1} µs"));
    let bound = if run.generator_bound {
        "; loadgen's thread was busy: the rate may be its limit"
    } else {
        ""
    };
    format!(
        "{:.0} req/s, {cpu} CPU per request ({} of {} clients answered{bound})",
        run.requests_per_sec, run.clients_answered, run.clients
    )
}

/// A newcomer's wait, for people.
fn newcomer(us: Option<u64>) -> String {
    match us {
        Some(us) if us < 1000 => format!("answered in {us} µs"),
        Some(us) => format!("answered in {:.1} ms", us as f64 / 1000.0),
        None => format!("not answered within {:?}", versus::NEWCOMER_WAIT),
    }
}

#[cfg(test)]
mod tests;
