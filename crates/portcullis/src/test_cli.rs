//! `portcullis test -c FILE CASES.yaml...`: runs declarative request cases offline through the
//! production phases and compares what came of each with its expectations. Exit 0 when every
//! case holds, 1 otherwise (a config or case file that cannot be read included); `--junit`
//! writes a JUnit XML report for CI systems.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use portcullis_offline::run::{Verdict, run_path};

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    #[command(flatten)]
    pub(crate) config: crate::cli::ConfigArgs,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Case files (YAML).
    #[arg(required = true)]
    pub(crate) cases: Vec<PathBuf>,
}

/// `println!` that leaves off when stdout is closed (`| head`) instead of panicking: the exit
/// code still says whether every case held.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub(crate) fn run(args: &TestArgs) -> ExitCode {
    let loaded = portcullis_config::load_file(&args.config.config, args.config.stage.as_deref());
    let snapshot = match crate::cli::build(loaded) {
        Ok(snapshot) => snapshot,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in the config; no case ran", errors.len());
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut suites = Vec::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &args.cases {
        let verdicts = runtime.block_on(run_path(&snapshot, path));
        out!("{}", path.display());
        for v in &verdicts {
            report(v);
            if v.passed() {
                passed += 1;
            } else {
                failed += 1;
            }
        }
        suites.push((path.clone(), verdicts));
    }
    out!("\n{passed} passed, {failed} failed");
    if let Some(junit) = &args.junit
        && let Err(e) = std::fs::write(junit, junit_xml(&suites))
    {
        eprintln!("{}: {e}", junit.display());
        return ExitCode::from(1);
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn report(v: &Verdict) {
    if v.passed() {
        out!("  ok    {}", v.name);
        return;
    }
    out!("  FAIL  {}", v.name);
    if let Some(e) = &v.error {
        out!("        error: {e}");
    }
    for m in &v.mismatches {
        out!("        {}:", m.field);
        out!("          expected: {}", m.expected);
        out!("          actual:   {}", m.actual);
    }
}

/// A JUnit XML report: a test suite per case file, a test case per case.
fn junit_xml(suites: &[(PathBuf, Vec<Verdict>)]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"portcullis test\">\n");
    for (path, verdicts) in suites {
        let failures = verdicts.iter().filter(|v| !v.passed()).count();
        let time: f64 = verdicts.iter().map(|v| v.seconds).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n",
            xml(&path.display().to_string()),
            verdicts.len()
        ));
        for v in verdicts {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml(&v.name),
                xml(&path.display().to_string()),
                v.seconds
            ));
            if v.passed() {
                out.push_str("/>\n");
                continue;
            }
            let mut text = String::new();
            if let Some(e) = &v.error {
                text.push_str(&format!("error: {e}\n"));
            }
            for m in &v.mismatches {
                text.push_str(&format!("{}: expected {}, actual {}\n", m.field, m.expected, m.actual));
            }
            let first = text.lines().next().unwrap_or("failed");
            out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(first),
                xml(&text)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
