//! Builds the playground (`playground/`, GraphiQL via vite) and the REST API reference (Swagger UI,
//! `docs.html`) into `$OUT_DIR/playground`, which the
//! server embeds. Runs only when the playground's sources change. Needs Node.js ≥ 20 and npm; set
//! `GANTRY_SKIP_PLAYGROUND=1` to embed a placeholder page instead.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("playground");
    let src = Path::new("playground");
    for input in ["package.json", "package-lock.json", "vite.config.js", "index.html", "docs.html", "src"] {
        println!("cargo:rerun-if-changed=playground/{input}");
    }
    println!("cargo:rerun-if-env-changed=GANTRY_SKIP_PLAYGROUND");
    // `embed_migrations!` reads `migrations/` at compile time but cannot tell cargo: rerunning this
    // script when a migration changes is what recompiles the crate with it.
    println!("cargo:rerun-if-changed=migrations");
    std::fs::create_dir_all(&out).expect("create $OUT_DIR/playground");

    if std::env::var_os("GANTRY_SKIP_PLAYGROUND").is_some() {
        std::fs::write(
            out.join("index.html"),
            "<!doctype html><title>Gantry playground</title><p>This build skipped the playground (GANTRY_SKIP_PLAYGROUND).</p>",
        )
        .expect("write placeholder");
        return;
    }

    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if Command::new(npm).arg("--version").output().is_err() {
        panic!(
            "\n\nGantry's playground is built from npm packages: install Node.js (≥ 20) and npm, \
             or set GANTRY_SKIP_PLAYGROUND=1 to build without it.\n\n"
        );
    }
    let installed = src.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&installed), std::fs::metadata(src.join("package-lock.json"))) {
        (Ok(i), Ok(l)) => i.modified().ok() >= l.modified().ok() && src.join("node_modules/.bin/vite").exists(),
        _ => false,
    };
    if !fresh {
        run(Command::new(npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(src), "npm ci");
    }
    run(
        Command::new(npm).args(["run", "build", "--", "--outDir"]).arg(&out).arg("--emptyOutDir").current_dir(src),
        "vite build",
    );
}

fn run(cmd: &mut Command, what: &str) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !output.status.success() {
        panic!(
            "\n\n{what} failed while building the playground:\n{}\n{}\n",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
