//! Imports SAM templates given on the command line and prints the outcome (a debugging aid).

fn main() {
    let skip = std::env::args().any(|a| a == "--skip");
    for p in std::env::args().skip(1).filter(|a| a != "--skip") {
        let opts = esb_sam::ImportOptions {
            skip_unsupported: skip,
            ..Default::default()
        };
        match esb_sam::import_file(std::path::Path::new(&p), &opts) {
            Ok(i) => println!(
                "{p}: OK {} functions, {} routes, {} authorizers, warnings {:?}",
                i.functions.len(),
                i.routes.len(),
                i.authorizers.len(),
                i.warnings
            ),
            Err(e) => println!("{p}: {e}"),
        }
    }
}
