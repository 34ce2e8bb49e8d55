//! A real S3-compatible server for a test: `s3s-fs` (files on disk) on a loopback port, with
//! a temporary root folder holding one bucket, killed when the test ends.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::peer::S3S_FS;
use crate::wait::wait_for;

/// A running `s3s-fs` with its own root folder and the bucket [`S3Server::BUCKET`]; killed and
/// reaped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// The access key the server takes.
    pub const ACCESS_KEY: &str = "numcheck-test-key";
    /// The secret key the server takes.
    pub const SECRET_KEY: &str = "numcheck-test-secret-Xk2Pq9";
    /// The bucket that exists from the start.
    pub const BUCKET: &str = "numcheck-test";

    /// Starts the server and waits until it listens. `s3s-fs` is found as [`S3S_FS`] says;
    /// when it is missing the test fails with the command that installs it.
    pub fn start() -> S3Server {
        let bin = S3S_FS.locate();
        let mut last_failure = String::new();
        // A port picked free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            let root = tempfile::tempdir().expect("a temporary folder");
            let data = root.path().join("data");
            // s3s-fs serves each folder under its root as a bucket.
            std::fs::create_dir_all(data.join(Self::BUCKET)).expect("create the bucket folder");
            let log_path = root.path().join("s3s-fs.log");
            let log = std::fs::File::create(&log_path).expect("create the s3s-fs log");
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", Self::ACCESS_KEY])
                .args(["--secret-key", Self::SECRET_KEY])
                .arg(&data)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("the log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let ready: Result<(), ExitStatus> =
                wait_for(format!("s3s-fs to listen on port {port}"))
                    .within(Duration::from_secs(20))
                    .every(Duration::from_millis(50))
                    .until_blocking(|| match child.try_wait() {
                        Ok(Some(status)) => Some(Err(status)),
                        _ => TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                            .is_ok()
                            .then_some(Ok(())),
                    });
            match ready {
                Ok(()) => {
                    return S3Server {
                        child,
                        port,
                        _root: root,
                    };
                }
                Err(status) => {
                    last_failure = format!(
                        "s3s-fs exited at once ({status}): {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
            }
        }
        panic!("could not start s3s-fs: {last_failure}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A blob-store URL for `bucket_path` (a bucket, optionally followed by `/prefix`) with
    /// the given credentials.
    pub fn url_with(&self, bucket_path: &str, access_key: &str, secret_key: &str) -> String {
        format!(
            "s3://{bucket_path}?endpoint={}&region=us-east-1&allow_http=true\
             &access_key_id={access_key}&secret_access_key={secret_key}",
            self.endpoint()
        )
    }

    /// The blob-store URL of the bucket with the right credentials.
    pub fn url(&self) -> String {
        self.url_with(Self::BUCKET, Self::ACCESS_KEY, Self::SECRET_KEY)
    }
}
