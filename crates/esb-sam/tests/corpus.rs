//! Every template of SAM's own test suite (shared corpus) is either imported or refused with an
//! error naming resource and property; none panics or hangs. Imported ones (without Lambda
//! authorizers, which esb-config cannot declare yet) must survive generate → esb-config.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use esb_model::RouteAuth;
use esb_sam::{ImportOptions, Imported, SamError, import_file, import_text};

/// Far above what any template needs (milliseconds); a hit means a hang.
const TIME_BOUND: Duration = Duration::from_secs(20);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/sam-templates")
}

enum Outcome {
    Imported(Box<Imported>),
    Refused(SamError),
    Panicked(String),
    Hung,
}

/// Points S3 code at the template's folder and swaps runtimes esb does not start for Python, so
/// the events, auth and CORS of templates whose code is remote get exercised too.
fn localize(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            if t.starts_with("CodeUri: s3://") {
                format!("{indent}CodeUri: .")
            } else if let Some(rt) = t.strip_prefix("Runtime: ")
                && ["nodejs", "java", "go1", "ruby", "dotnet"]
                    .iter()
                    .any(|p| rt.starts_with(p))
            {
                format!("{indent}Runtime: python3.12")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(path: &Path, skip: bool, local: bool) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let opts = ImportOptions {
            skip_unsupported: skip,
            base_dir: p.parent().map(Path::to_path_buf),
            ..ImportOptions::default()
        };
        let r = std::panic::catch_unwind(|| {
            if local {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                import_text(&localize(&text), &opts)
            } else {
                import_file(&p, &opts)
            }
        });
        let _ = tx.send(match r {
            Ok(Ok(i)) => Outcome::Imported(Box::new(i)),
            Ok(Err(e)) => Outcome::Refused(e),
            Err(p) => Outcome::Panicked(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            ),
        });
    });
    rx.recv_timeout(TIME_BOUND).unwrap_or(Outcome::Hung)
}

/// `unsupported: Runtime`, `invalid: Path`, ...: the kind and the property named last.
fn reason(e: &SamError) -> String {
    let prop = e
        .at()
        .map(|at| at.rsplit('.').next().unwrap_or(at).to_string())
        .unwrap_or_default();
    let prop = if prop.contains('[') {
        prop.split('[').next().unwrap_or("").to_string()
    } else {
        prop
    };
    format!("{}: {prop}", e.kind())
}

#[test]
fn every_corpus_template_imports_or_is_refused_cleanly() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the shared corpus at ../shared/corpus/sam-templates")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    assert!(files.len() > 800, "corpus has {} templates", files.len());

    let mut problems = Vec::new();
    for (skip, local) in [(false, false), (true, false), (true, true)] {
        let mut imported = 0;
        let mut round_trips = 0;
        let mut functions = 0;
        let mut routes = 0;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            match run(f, skip, local) {
                Outcome::Imported(i) => {
                    imported += 1;
                    functions += i.functions.len();
                    routes += i.routes.len();
                    let has_authorizer_routes = i
                        .routes
                        .iter()
                        .any(|r| matches!(r.auth, RouteAuth::Authorizer(_)));
                    if !has_authorizer_routes {
                        common::assert_round_trip(&i, &name);
                        round_trips += 1;
                    }
                }
                Outcome::Refused(e) => {
                    *kinds.entry(e.kind()).or_default() += 1;
                    *reasons.entry(reason(&e)).or_default() += 1;
                    let names_place = match &e {
                        SamError::Parse { .. } | SamError::TooLarge { .. } => true,
                        other => other.at().is_some_and(|a| !a.is_empty()),
                    };
                    if !names_place {
                        problems.push(format!(
                            "{name} (local={local}): refusal names no place: {e}"
                        ));
                    }
                }
                Outcome::Panicked(m) => problems.push(format!("{name} (local={local}): PANIC {m}")),
                Outcome::Hung => problems.push(format!(
                    "{name} (local={local}): no answer within {TIME_BOUND:?}"
                )),
            }
        }
        let mut top: Vec<(&String, &usize)> = reasons.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        // Straight to the stderr handle: libtest captures eprintln!, and these counts should show
        // without --nocapture.
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "corpus ({} templates, skip_unsupported={skip}, S3 code and other runtimes made local={local}): imported {imported} \
             ({functions} functions, {routes} routes; {round_trips} round-tripped through esb-config), \
             refused {} by kind {kinds:?}",
            files.len(),
            files.len() - imported,
        );
        for (r, n) in top.iter().take(15) {
            let _ = writeln!(err, "  {n:4}  {r}");
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
