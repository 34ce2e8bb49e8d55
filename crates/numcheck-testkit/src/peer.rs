//! The programs some tests talk to (an S3 server, osmo-hlr, chromedriver). Tests never install
//! them: `.ci/run` does. A test whose peer is missing fails, and the message names the command
//! that installs it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A program a test needs on the machine, and how it gets there.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The program's file name.
    pub program: &'static str,
    /// An environment variable that, when set, names the binary explicitly.
    pub env: Option<&'static str>,
    /// The command that installs it (`.ci/run` runs the same).
    pub install: &'static str,
}

/// A real S3-compatible server (files on disk). Pinned: later releases need a newer rustc.
pub const S3S_FS: Peer = Peer {
    program: "s3s-fs",
    env: Some("S3S_FS"),
    install: "cargo install s3s-fs --version 0.14.1 --features binary --locked",
};

/// Osmocom's HLR (Debian bookworm ships 1.5.0).
pub const OSMO_HLR: Peer = Peer {
    program: "osmo-hlr",
    env: None,
    install: "apt-get install osmo-hlr",
};

/// WebDriver for the headless Chromium the dashboard's browser test drives.
pub const CHROMEDRIVER: Peer = Peer {
    program: "chromedriver",
    env: None,
    install: "apt-get install chromium chromium-driver",
};

impl Peer {
    /// The program's path: the explicit variable when set, else the first on `PATH`, else
    /// (for what `cargo install` puts there) `$CARGO_HOME/bin`. Panics, naming the install
    /// command, when it is nowhere.
    pub fn locate(&self) -> PathBuf {
        self.find()
            .unwrap_or_else(|why| panic!("{}", self.missing(&why)))
    }

    /// The program's path, or why it was not found.
    pub fn find(&self) -> Result<PathBuf, String> {
        if let Some(var) = self.env
            && let Some(value) = std::env::var_os(var)
        {
            let explicit = PathBuf::from(value);
            return if executable(&explicit) {
                Ok(explicit)
            } else {
                Err(format!(
                    "{var}={} is not an executable file",
                    explicit.display()
                ))
            };
        }
        let on_path = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(self.program))
                .find(|candidate| executable(candidate))
        });
        on_path
            .or_else(|| {
                self.install
                    .starts_with("cargo install")
                    .then(|| cargo_home().join("bin").join(self.program))
                    .filter(|candidate| executable(candidate))
            })
            .ok_or_else(|| {
                let places = if self.install.starts_with("cargo install") {
                    "neither on PATH nor in $CARGO_HOME/bin"
                } else {
                    "not on PATH"
                };
                format!("`{}` is {places}", self.program)
            })
    }

    fn missing(&self, why: &str) -> String {
        let or_env = self
            .env
            .map(|var| format!(", or set {var} to the binary"))
            .unwrap_or_default();
        format!(
            "this test needs {}, and {why}. Install it with `{}` (.ci/run installs it){or_env}.",
            self.program, self.install
        )
    }
}

fn executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_names_its_install_command() {
        let nowhere = Peer {
            program: "numcheck-testkit-no-such-program",
            env: None,
            install: "cargo install numcheck-testkit-no-such-program --locked",
        };
        let why = nowhere.find().unwrap_err();
        assert!(why.contains("$CARGO_HOME/bin"), "{why}");
        let message = nowhere.missing(&why);
        assert!(
            message.contains("`cargo install numcheck-testkit-no-such-program --locked`")
                && message.contains(".ci/run installs it"),
            "{message}"
        );
    }

    #[test]
    fn a_program_on_path_is_found() {
        let sh = Peer {
            program: "sh",
            env: None,
            install: "apt-get install dash",
        };
        assert!(sh.locate().ends_with("sh"));
    }
}
