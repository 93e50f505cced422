//! The book's fault-matrix table is generated from `harness::faults::FAULTS` and the
//! registry's behaviours, the same ones the fault tests check each version against; this
//! test keeps the two the same.

use harness::faults::markdown;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/src/hardening.md");
const START: &str = "<!-- fault-matrix: generated from harness/src/faults.rs -->\n";
const END: &str = "<!-- /fault-matrix -->";

#[test]
fn the_book_shows_the_matrix_the_tests_check() {
    let page = std::fs::read_to_string(PAGE).expect("docs/src/hardening.md");
    let (before, rest) = page.split_once(START).expect("the page has the table's start marker");
    let (table, after) = rest.split_once(END).expect("the page has the table's end marker");
    let generated = markdown();
    if table == generated {
        return;
    }
    if std::env::var_os("UPDATE_BOOK").is_some() {
        std::fs::write(PAGE, format!("{before}{START}{generated}{END}{after}"))
            .expect("write the page");
        return;
    }
    panic!(
        "docs/src/hardening.md shows a different matrix from harness/src/faults.rs.\n\
         Rewrite it with: UPDATE_BOOK=1 cargo test -p harness --test \
         fault_matrix_in_book\nThe table should read:\n{generated}"
    );
}
