//! Copies libphonenumber's metadata out of the `rlibphonenumber` package into `OUT_DIR`.
//!
//! The compiled fast path of the numbering plan (`src/plan/fast.rs`) decodes the very same
//! `PhoneMetadataCollection` that `rlibphonenumber` carries, so the two can never disagree on
//! the data. That crate does not export the bytes, so we find its package directory:
//!
//! 1. `$CARGO metadata --locked --offline --filter-platform $TARGET` on this workspace,
//!    looking for the package named `rlibphonenumber` at the pinned version. It runs under a time limit and with its output
//!    sent to a file, so a held package-cache lock or a large answer can never hang the build;
//! 2. failing that, `$CARGO_HOME/registry/src/*/rlibphonenumber-<version>/` (`~/.cargo` when
//!    `CARGO_HOME` is unset);
//! 3. failing that, the build stops with a message saying what was tried.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `rlibphonenumber` release whose metadata we read. The workspace pins the same version
/// (`rlibphonenumber = "=2.2.15"`); change both together, and `METADATA_VERSION` in `plan.rs`.
const RLIBPHONENUMBER_VERSION: &str = "2.2.15";
/// Where the metadata sits inside that package.
const METADATA_IN_PACKAGE: &str = "src/generated/metadata/metadata.bin";
/// How long `cargo metadata` may take before we give up on it and scan the registry instead.
const CARGO_METADATA_TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    // A change of the lock file may mean another rlibphonenumber; our own manifest too.
    for lock in manifest_dir.ancestors().map(|d| d.join("Cargo.lock")) {
        if lock.is_file() {
            println!("cargo:rerun-if-changed={}", lock.display());
            break;
        }
    }
    println!("cargo:rerun-if-env-changed=CARGO_HOME");

    let mut tried = Vec::new();
    let package = match from_cargo_metadata(&manifest_dir, &out_dir) {
        Ok(dir) => Some(dir),
        Err(why) => {
            tried.push(format!("`cargo metadata`: {why}"));
            match from_registry() {
                Ok(dir) => Some(dir),
                Err(why) => {
                    tried.push(format!("registry scan: {why}"));
                    None
                }
            }
        }
    };
    let Some(package) = package else {
        fail(&format!(
            "cannot find the rlibphonenumber {RLIBPHONENUMBER_VERSION} package, whose \
             metadata the numbering plan compiles.\n  tried:\n    - {}\n  fix: run `cargo fetch` \
             (network needed once), or point CARGO_HOME at the registry that holds it",
            tried.join("\n    - ")
        ));
    };

    let source = package.join(METADATA_IN_PACKAGE);
    if !source.is_file() {
        fail(&format!(
            "rlibphonenumber {RLIBPHONENUMBER_VERSION} at {} has no {METADATA_IN_PACKAGE}: \
             the crate's layout changed; update build.rs",
            package.display()
        ));
    }
    println!("cargo:rerun-if-changed={}", source.display());
    let target = out_dir.join("metadata.bin");
    if let Err(e) = fs::copy(&source, &target) {
        fail(&format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            target.display()
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: numcheck-core build script: {message}");
    std::process::exit(1);
}

/// Asks cargo where the resolved `rlibphonenumber` package lives.
fn from_cargo_metadata(manifest_dir: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let cargo = env::var_os("CARGO").ok_or("CARGO is not set")?;
    let answer = out_dir.join("cargo-metadata.json");
    let file = fs::File::create(&answer).map_err(|e| format!("cannot create {answer:?}: {e}"))?;
    let mut command = Command::new(cargo);
    command.args(["metadata", "--format-version", "1", "--locked", "--offline"]);
    // Without a platform filter cargo wants every platform's dependencies, which an offline
    // machine does not have (Windows-only crates, say).
    if let Some(target) = env::var_os("TARGET") {
        command.arg("--filter-platform").arg(target);
    }
    let mut child = command
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .current_dir(manifest_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > CARGO_METADATA_TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no answer within {}s (a lock held elsewhere?)",
                    CARGO_METADATA_TIME_LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    if !status.success() {
        let _ = fs::remove_file(&answer);
        return Err(format!("exited with {status}"));
    }
    let text = fs::read(&answer).map_err(|e| format!("cannot read its answer: {e}"))?;
    let _ = fs::remove_file(&answer);
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("unreadable answer: {e}"))?;
    let packages = json["packages"].as_array().ok_or("no `packages` list")?;
    let mut versions = Vec::new();
    for p in packages {
        if p["name"] != "rlibphonenumber" {
            continue;
        }
        let version = p["version"].as_str().unwrap_or_default();
        if version != RLIBPHONENUMBER_VERSION {
            versions.push(version.to_owned());
            continue;
        }
        let manifest = p["manifest_path"]
            .as_str()
            .ok_or("package without manifest_path")?;
        return Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("odd manifest path {manifest}"));
    }
    if versions.is_empty() {
        Err("no package named rlibphonenumber in the dependency graph".into())
    } else {
        fail(&format!(
            "the workspace resolves rlibphonenumber {} but this build script reads the \
             metadata of {RLIBPHONENUMBER_VERSION}: pin `rlibphonenumber = \"={RLIBPHONENUMBER_VERSION}\"` \
             in the workspace Cargo.toml, or update RLIBPHONENUMBER_VERSION in build.rs and \
             METADATA_VERSION in src/plan.rs together",
            versions.join(", ")
        ))
    }
}

/// Looks for the unpacked crate in cargo's registry cache.
fn from_registry() -> Result<PathBuf, String> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry").join("src");
    let entries = fs::read_dir(&src).map_err(|e| format!("cannot list {}: {e}", src.display()))?;
    let wanted = format!("rlibphonenumber-{RLIBPHONENUMBER_VERSION}");
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|index| index.path().join(&wanted))
        .filter(|dir| dir.join(METADATA_IN_PACKAGE).is_file())
        .collect();
    found.sort();
    found
        .into_iter()
        .next()
        .ok_or_else(|| format!("no {wanted}/ under {}", src.display()))
}
