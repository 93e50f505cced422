//! Beside the slow-handler table: how each version that spreads by hash split the clients
//! between its loops or rings in this run, and why that decides much of its count (see
//! `compare::split`), so that a reader does not take one run's luck for the model's.

use crate::compare::ScenarioResult;

/// The paragraph, then a line per version with a split; nothing when none has one.
pub(crate) fn notes(scenario: &ScenarioResult) -> (Option<String>, Vec<String>) {
    let split: Vec<_> = scenario
        .outcomes
        .iter()
        .filter_map(|o| Some((o.subject.name(), o.split.as_ref()?)))
        .collect();
    let Some((_, first)) = split.first() else { return (None, Vec::new()) };
    let names: Vec<&str> = split.iter().map(|(name, _)| *name).collect();
    let threads = first.accepted.len().max(1);
    let edge = first.timeout_ms / first.handler_ms.max(1);
    let timeout = match first.timeout_ms {
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    };
    let paragraph = format!(
        "How the clients fell between the loops: {names} spread connections by the kernel's \
         hash (`SO_REUSEPORT`), not by load: each of the {clients} clients, and each \
         reconnect after a timeout, goes to the loop (or ring) its port hashes to. A loop \
         runs one {ms} ms handler at a time, {edge} within the {timeout} timeout, so one \
         serving {edge} or more clients in turn answers each at the timeout or later; \
         {clients} clients over {threads} loops is {avg} each on average. What a run answers \
         turns on how unevenly the hash split them (a loop left under the edge answers all \
         its clients), drawn anew in every run: a difference in one run between versions \
         that spread by hash can be the hash's luck, not the model's. Compare several runs \
         before reading it as the model's. Connections each loop accepted in this run (the \
         clients, their reconnects, and two /stats requests of compare's own):",
        names = names.join(" and "),
        clients = first.clients,
        ms = first.handler_ms,
        avg = first.clients as f64 / threads as f64,
    );
    let lines = split
        .iter()
        .map(|(name, s)| format!("{name}'s {} {}: {}", s.accepted.len(), s.list, join(&s.accepted)))
        .collect();
    (Some(paragraph), lines)
}

fn join(counts: &[u64]) -> String {
    counts.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ")
}
