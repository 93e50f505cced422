//! The tables the README and the book show of the versions, generated from [`VERSIONS`]:
//! each page holds its table between two markers, and a test (`tests/tables.rs`) fails
//! when the page and the registry disagree.

use crate::VERSIONS;

/// A generated block of a page: its markers and its text.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// The page, from the workspace's root.
    pub page: &'static str,
    /// The marker's name: the block is `<!-- versions:NAME -->` … `<!-- /versions:NAME -->`.
    pub name: &'static str,
    pub generate: fn() -> String,
}

/// Every generated block, by page.
pub const BLOCKS: &[Block] = &[
    Block { page: "README.md", name: "crates", generate: readme },
    Block { page: "docs/src/introduction.md", name: "story", generate: story },
    Block { page: "docs/src/introduction.md", name: "run", generate: run },
];

/// The README's table: each crate, its model, its options, its default address.
pub fn readme() -> String {
    let mut md = String::from("| crate | model | options | default address |\n|---|---|---|---|\n");
    for v in VERSIONS {
        md += &format!("| `{}` | {} | {} | `{}` |\n", v.name, v.model, v.options, v.addr);
    }
    md
}

/// The introduction's table: the story, one step a row.
pub fn story() -> String {
    let mut md =
        String::from("| version | model | what it fixes | what it costs |\n|---|---|---|---|\n");
    for v in VERSIONS {
        md += &format!(
            "| [`{}`]({}) | {} | {} | {} |\n",
            v.name, v.chapter, v.model, v.fixes, v.costs
        );
    }
    md
}

/// The introduction's table of how to run each.
pub fn run() -> String {
    let mut md = String::from("| version | run it | port |\n|---|---|---|\n");
    for v in VERSIONS {
        md += &format!("| {} | `{}` | {} |\n", v.name, v.command(), v.port());
    }
    md
}

impl Block {
    pub fn start(&self) -> String {
        format!("<!-- versions:{}: generated from registry/src/lib.rs -->\n", self.name)
    }

    pub fn end(&self) -> String {
        format!("<!-- /versions:{} -->", self.name)
    }

    /// `page` with this block's text replaced by what the registry generates; an error
    /// if the page has no markers for it.
    pub fn rewrite(&self, page: &str) -> Result<String, String> {
        let (start, end) = (self.start(), self.end());
        let missing = || format!("{} has no `{}` … `{end}` markers", self.page, start.trim());
        let (before, rest) = page.split_once(&start).ok_or_else(missing)?;
        let (_, after) = rest.split_once(&end).ok_or_else(missing)?;
        Ok(format!("{before}{start}{}{end}{after}", (self.generate)()))
    }
}
