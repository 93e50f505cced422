//! `registry`: prints the versions, one a line, for scripts: `name address`, and with
//! `--variants` a line for each variant too (`name address options…`).

fn main() {
    let variants = std::env::args().any(|a| a == "--variants");
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "Prints the workspace's versions, one a line: `name address`.\n\
             --variants  also a line per variant: `name address options…`"
        );
        return;
    }
    for v in registry::VERSIONS {
        println!("{} {}", v.name, v.addr);
        if variants {
            for variant in v.variants {
                println!("{} {} {}", v.name, v.addr, variant.args.join(" "));
            }
        }
    }
}
