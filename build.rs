//! Builds the web pages the server embeds, each from its npm project with vite, into `$OUT_DIR`:
//! the playground and the REST API reference (`playground/`: GraphiQL, Swagger UI) into
//! `$OUT_DIR/playground`, and the developer console (`console/`) into `$OUT_DIR/console`, whose
//! JavaScript must stay within its size budget (`console/scripts/size.mjs`, 350 KB gzipped). Runs
//! only when their sources change. Needs Node.js ≥ 20 and npm; set `GANTRY_SKIP_PLAYGROUND=1` to
//! embed placeholder pages instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const INPUTS: &[(&str, &[&str])] = &[
    ("playground", &["package.json", "package-lock.json", "vite.config.js", "index.html", "docs.html", "src"]),
    ("console", &["package.json", "package-lock.json", "vite.config.js", "index.html", "src", "scripts"]),
];

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (project, inputs) in INPUTS {
        for input in *inputs {
            println!("cargo:rerun-if-changed={project}/{input}");
        }
    }
    println!("cargo:rerun-if-env-changed=GANTRY_SKIP_PLAYGROUND");
    // `embed_migrations!` reads `migrations/` at compile time but cannot tell cargo: rerunning this
    // script when a migration changes is what recompiles the crate with it.
    println!("cargo:rerun-if-changed=migrations");

    let skip = std::env::var_os("GANTRY_SKIP_PLAYGROUND").is_some();
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !skip && Command::new(npm).arg("--version").output().is_err() {
        panic!(
            "\n\nGantry's playground and console are built from npm packages: install Node.js (≥ 20) and \
             npm, or set GANTRY_SKIP_PLAYGROUND=1 to build without them.\n\n"
        );
    }
    for (project, _) in INPUTS {
        let out = out_dir.join(project);
        std::fs::create_dir_all(&out).expect("create the output directory");
        if skip {
            std::fs::write(
                out.join("index.html"),
                format!("<!doctype html><title>Gantry {project}</title><p>This build skipped the {project} (GANTRY_SKIP_PLAYGROUND).</p>"),
            )
            .expect("write placeholder");
            continue;
        }
        build(npm, Path::new(project), &out);
    }
    let console = out_dir.join("console");
    if !skip {
        run(Command::new("node").arg("console/scripts/size.mjs").arg(&console), "the console's size budget");
    }
}

/// `npm ci` when `node_modules` is missing or older than the lock file, then `vite build`.
fn build(npm: &str, src: &Path, out: &Path) {
    let installed = src.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&installed), std::fs::metadata(src.join("package-lock.json"))) {
        (Ok(i), Ok(l)) => i.modified().ok() >= l.modified().ok() && src.join("node_modules/.bin/vite").exists(),
        _ => false,
    };
    if !fresh {
        run(Command::new(npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(src), "npm ci");
    }
    run(
        Command::new(npm).args(["run", "build", "--", "--outDir"]).arg(out).arg("--emptyOutDir").current_dir(src),
        "vite build",
    );
}

fn run(cmd: &mut Command, what: &str) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !output.status.success() {
        panic!(
            "\n\n{what} failed while building the web pages:\n{}\n{}\n",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
