//! Shared by the integration tests: load generated files through esb-config and compare.

use std::path::Path;

use esb_model::{FunctionSpec, RouteSpec};
use esb_sam::{Generated, Imported};

/// Writes `g` next to an esb.toml in `dir` and loads it with esb-config.
pub fn load_generated(dir: &Path, g: &Generated) -> Result<esb_config::Config, String> {
    std::fs::write(dir.join("functions.yml"), &g.functions_yml).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("routing.yml"), &g.routing_yml).map_err(|e| e.to_string())?;
    let toml = dir.join("esb.toml");
    std::fs::write(
        &toml,
        "functions = \"functions.yml\"\nrouting = \"routing.yml\"\n",
    )
    .map_err(|e| e.to_string())?;
    esb_config::Config::load(&toml, &|_| None).map_err(|e| e.to_string())
}

/// Generates, loads, and checks esb-config sees the same functions and routes.
pub fn assert_round_trip(imported: &Imported, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let g = esb_sam::generate(imported);
    let cfg = load_generated(dir.path(), &g).unwrap_or_else(|e| {
        panic!(
            "{label}: generated files do not load: {e}\n--- functions.yml\n{}\n--- routing.yml\n{}",
            g.functions_yml, g.routing_yml
        )
    });
    let sorted = |v: &[FunctionSpec]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(
        sorted(&cfg.functions),
        sorted(&imported.functions),
        "{label}: functions differ"
    );
    let routes: &[RouteSpec] = &cfg.routes;
    assert_eq!(routes, imported.routes.as_slice(), "{label}: routes differ");
    assert!(cfg.warnings.is_empty(), "{label}: {:?}", cfg.warnings);
}
