//! The live page checked in a real browser: headless Chromium, found if installed, and
//! skipped with a line on the terminal (required under CI) if not.

use std::io::{self, Write};
use std::time::Duration;

/// The browsers [`render_in_browser`] looks for, in order.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The first browser of [`BROWSERS`] that runs here.
fn find_browser() -> Option<&'static str> {
    BROWSERS
        .into_iter()
        .find(|name| std::process::Command::new(name).arg("--version").output().is_ok())
}

/// Whether the browser test `test` can run: true when a browser is installed. Without one
/// it is required where `CI` is set (the test fails, saying how to install one) and
/// skipped elsewhere, saying so in one line on the terminal, so `cargo test --workspace`
/// passes on a machine with only Rust.
pub fn browser_or_skip(test: &str) -> bool {
    if find_browser().is_some() {
        return true;
    }
    let install = "install Chromium to run it (Debian, Ubuntu: sudo apt-get install chromium)";
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: no browser found, and CI requires it: {install}"
    );
    // Straight to stderr, not through `eprintln!`, which the test harness would swallow
    // for a test that passes.
    let _ = writeln!(io::stderr(), "skipped {test}: no browser found; {install}");
    false
}

/// Loads `url` in headless Chromium, lets its scripts run for `budget` of the page's
/// (virtual) time, and returns the DOM as the browser rendered it. An error says what
/// went wrong: a missing browser (with the command that installs it), or a script error
/// on the page (with the DOM as far as it got).
pub fn render_in_browser(url: &str, budget: Duration) -> Result<String, String> {
    let browser = find_browser().ok_or(
        "no Chromium found: install it (apt-get install chromium) to run the browser tests",
    )?;
    let output = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        // The page's console on stderr, where an uncaught exception shows.
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run {browser}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{browser} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> =
        stderr.lines().filter(|l| l.contains(":CONSOLE") && l.contains("Uncaught")).collect();
    if !errors.is_empty() {
        return Err(format!(
            "script errors on {url}:\n{}\nthe browser saw:\n{dom}",
            errors.join("\n")
        ));
    }
    Ok(dom)
}
