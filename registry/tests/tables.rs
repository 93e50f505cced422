//! The README's and the book's tables of the versions must be the registry's: adding a
//! version to the registry without them, or editing them by hand, fails here.

use std::path::Path;

use registry::tables::BLOCKS;

#[test]
fn the_pages_show_the_registry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for block in BLOCKS {
        let path = root.join(block.page);
        let page = std::fs::read_to_string(&path).expect("read the page");
        let rewritten = block.rewrite(&page).unwrap_or_else(|e| panic!("{e}"));
        if rewritten == page {
            continue;
        }
        if update {
            std::fs::write(&path, rewritten).expect("write the page");
        } else {
            stale.push(format!("{} ({})", block.page, block.name));
        }
    }
    assert!(
        stale.is_empty(),
        "these tables differ from registry/src/lib.rs: {}.\nRewrite them with: UPDATE_DOCS=1 \
         cargo test -p registry --test tables",
        stale.join(", ")
    );
}
