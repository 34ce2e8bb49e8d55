//! The blob store against a real S3-compatible server: `s3s-fs`, started on loopback with a
//! temporary root folder for each test and killed when the test ends.
//!
//! When `s3s-fs` is not on `PATH` (nor in `$CARGO_HOME/bin`), the first test installs it with
//! `cargo install` (see [`INSTALL_ARGS`]); when that fails every test fails, never passes.
//! `S3S_FS` may name the binary explicitly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use numcheck_blob::{BlobError, BlobStore};
use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};

const ACCESS_KEY: &str = "numcheck-test-key";
const SECRET_KEY: &str = "numcheck-test-secret-Xk2Pq9";
const BUCKET: &str = "numcheck-test";

/// How the tests install the server when it is missing. 0.14.1 is the newest release that
/// builds with Rust 1.95 (0.15 and later need 1.96).
const INSTALL_ARGS: &[&str] = &[
    "install",
    "s3s-fs",
    "--version",
    "0.14.1",
    "--features",
    "binary",
    "--locked",
];

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn cargo_home_bin(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let candidate = home.join("bin").join(name);
    candidate.is_file().then_some(candidate)
}

/// The `s3s-fs` binary, installed once per test run when missing.
fn s3s_fs() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BIN.get_or_init(|| {
        if let Some(explicit) = std::env::var_os("S3S_FS") {
            let explicit = PathBuf::from(explicit);
            return if explicit.is_file() {
                Ok(explicit)
            } else {
                Err(format!("S3S_FS={} is not a file", explicit.display()))
            };
        }
        if let Some(bin) = find_on_path("s3s-fs").or_else(|| cargo_home_bin("s3s-fs")) {
            return Ok(bin);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!(
            "s3s-fs is not on PATH: installing it with `cargo {}` (takes a few minutes)",
            INSTALL_ARGS.join(" ")
        );
        let status = Command::new(&cargo)
            .args(INSTALL_ARGS)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("could not run cargo to install s3s-fs: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`cargo {}` failed ({status}); install s3s-fs by hand or set S3S_FS",
                INSTALL_ARGS.join(" ")
            ));
        }
        find_on_path("s3s-fs")
            .or_else(|| cargo_home_bin("s3s-fs"))
            .ok_or_else(|| {
                "s3s-fs was installed but is neither on PATH nor in $CARGO_HOME/bin".into()
            })
    });
    match found {
        Ok(bin) => bin,
        Err(msg) => panic!("S3 tests need s3s-fs: {msg}"),
    }
}

/// A running `s3s-fs` with its own root folder; killed on drop.
struct S3Server {
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
    fn start() -> S3Server {
        let bin = s3s_fs();
        let mut last_failure = String::new();
        // A port picked free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            let root = tempfile::tempdir().unwrap();
            let data = root.path().join("data");
            std::fs::create_dir(&data).unwrap();
            let log_path = root.path().join("s3s-fs.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(bin)
                .arg("--host")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(port.to_string())
                .arg("--access-key")
                .arg(ACCESS_KEY)
                .arg("--secret-key")
                .arg(SECRET_KEY)
                .arg(&data)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last_failure = format!(
                        "s3s-fs exited at once ({status}): {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                    break;
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return S3Server {
                        child,
                        port,
                        _root: root,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_failure = "s3s-fs did not listen within 15 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start s3s-fs: {last_failure}");
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url_with(&self, bucket_path: &str, access_key: &str, secret_key: &str) -> String {
        format!(
            "s3://{bucket_path}?endpoint={}&region=us-east-1&allow_http=true\
             &access_key_id={access_key}&secret_access_key={secret_key}",
            self.endpoint()
        )
    }

    fn url(&self) -> String {
        self.url_with(BUCKET, ACCESS_KEY, SECRET_KEY)
    }

    /// A plain `object_store` client on the test bucket, to look behind the blob store.
    fn raw(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Creates the test bucket with a SigV4-presigned `PUT /bucket/` (CreateBucket).
    async fn create_bucket(&self) {
        let url = self
            .raw()
            .signed_url(Method::PUT, &ObjectPath::from(""), Duration::from_secs(60))
            .await
            .unwrap();
        let resp = reqwest::Client::new().put(url).send().await.unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "CreateBucket answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

/// A server with the test bucket, and a store on it.
async fn setup() -> (S3Server, BlobStore) {
    let server = S3Server::start();
    server.create_bucket().await;
    let store = BlobStore::from_url(&server.url()).unwrap();
    (server, store)
}

/// Deterministic bytes that differ at every offset (so a misplaced range shows).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn put_get_size_delete_round_trip() {
    let (_server, store) = setup().await;
    assert!(store.is_remote());

    store
        .put("uploads/a.csv", Bytes::from_static(b"+14155552671\n"))
        .await
        .unwrap();
    assert_eq!(
        store.get("uploads/a.csv").await.unwrap(),
        Bytes::from_static(b"+14155552671\n")
    );
    assert_eq!(store.size("uploads/a.csv").await.unwrap(), Some(13));
    assert_eq!(
        store.get_range("uploads/a.csv", 1..5).await.unwrap(),
        Bytes::from_static(b"1415")
    );
    assert_eq!(store.size("uploads/missing.csv").await.unwrap(), None);
    assert!(matches!(
        store.get("uploads/missing.csv").await,
        Err(BlobError::NotFound(k)) if k == "uploads/missing.csv"
    ));
    assert!(matches!(
        store.stream("uploads/missing.csv").await,
        Err(BlobError::NotFound(_))
    ));

    store.delete("uploads/a.csv").await.unwrap();
    assert_eq!(store.size("uploads/a.csv").await.unwrap(), None);
    // Deleting a missing blob is not an error.
    store.delete("uploads/a.csv").await.unwrap();
}

#[tokio::test]
async fn large_streamed_write_goes_multipart_and_reads_back_by_ranges() {
    let (server, store) = setup().await;
    let len = 10 * 1024 * 1024 + 123_457; // three parts of 5 MiB, the last one short
    let data = pattern(len);

    let mut w = store.writer("results/big.bin").await.unwrap();
    for piece in data.chunks(256 * 1024 + 7) {
        w.write(piece).await.unwrap();
    }
    assert_eq!(w.written(), len as u64);
    // Parts are uploaded, but nothing is visible until the upload completes.
    assert_eq!(store.size("results/big.bin").await.unwrap(), None);
    assert_eq!(w.finish().await.unwrap(), len as u64);

    assert_eq!(
        store.size("results/big.bin").await.unwrap(),
        Some(len as u64)
    );
    // A multipart upload's ETag ends in its part count: 5 MiB parts make three.
    let meta = server
        .raw()
        .head(&ObjectPath::from("results/big.bin"))
        .await
        .unwrap();
    let e_tag = meta.e_tag.unwrap_or_default();
    assert!(e_tag.trim_matches('"').ends_with("-3"), "ETag {e_tag}");
    let part = 5 * 1024 * 1024;
    for range in [
        0..1,
        0..4096,
        (part - 10)..(part + 10),
        (2 * part - 1)..(2 * part + 1),
        1_000_003..3_000_017,
        (len - 100)..len,
    ] {
        let got = store
            .get_range("results/big.bin", range.start as u64..range.end as u64)
            .await
            .unwrap();
        assert_eq!(&got[..], &data[range.clone()], "range {range:?}");
    }
    assert!(
        store
            .get_range("results/big.bin", 7..7)
            .await
            .unwrap()
            .is_empty()
    );

    let (size, stream) = store.stream("results/big.bin").await.unwrap();
    assert_eq!(size, len as u64);
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert!(chunks.iter().map(Bytes::len).sum::<usize>() == len);
    assert!(chunks.concat() == data, "streamed bytes differ");

    // put_file takes the same multipart path.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.csv");
    std::fs::write(&file, &data[..6 * 1024 * 1024]).unwrap();
    assert_eq!(
        store.put_file("uploads/file.csv", &file).await.unwrap(),
        6 * 1024 * 1024
    );
    assert!(store.get("uploads/file.csv").await.unwrap() == data[..6 * 1024 * 1024]);
}

#[tokio::test]
async fn small_empty_and_aborted_streamed_writes() {
    let (_server, store) = setup().await;

    let mut w = store.writer("uploads/small.csv").await.unwrap();
    w.write(b"+1415").await.unwrap();
    w.write(b"5552671\n").await.unwrap();
    assert_eq!(w.finish().await.unwrap(), 13);
    assert_eq!(
        store.get("uploads/small.csv").await.unwrap(),
        Bytes::from_static(b"+14155552671\n")
    );

    let w = store.writer("uploads/empty.csv").await.unwrap();
    assert_eq!(w.finish().await.unwrap(), 0);
    assert_eq!(store.size("uploads/empty.csv").await.unwrap(), Some(0));
    assert!(store.get("uploads/empty.csv").await.unwrap().is_empty());

    let mut w = store.writer("uploads/aborted.csv").await.unwrap();
    w.write(&pattern(6 * 1024 * 1024)).await.unwrap();
    w.abort().await.unwrap();
    assert_eq!(store.size("uploads/aborted.csv").await.unwrap(), None);
}

#[tokio::test]
async fn delete_prefix_removes_one_folder_only() {
    let (_server, store) = setup().await;
    for key in [
        "work/t/0.csv",
        "work/t/1.csv",
        "work/t/sub/2.csv",
        "work/tt/0.csv",
        "work/u/0.csv",
    ] {
        store.put(key, Bytes::from(key.to_owned())).await.unwrap();
    }
    store.delete_prefix("work/t").await.unwrap();
    for gone in ["work/t/0.csv", "work/t/1.csv", "work/t/sub/2.csv"] {
        assert_eq!(store.size(gone).await.unwrap(), None, "{gone}");
    }
    for kept in ["work/tt/0.csv", "work/u/0.csv"] {
        assert_eq!(
            store.get(kept).await.unwrap(),
            Bytes::from(kept.to_owned()),
            "{kept}"
        );
    }
    // An empty prefix is fine.
    store.delete_prefix("work/none").await.unwrap();
}

#[tokio::test]
async fn presigned_get_serves_the_bytes_and_refuses_tampered_or_expired_urls() {
    let (server, store) = setup().await;
    let body = pattern(100_000);
    store
        .put("results/task-1.zip", Bytes::from(body.clone()))
        .await
        .unwrap();
    store
        .put("results/task-2.zip", Bytes::from_static(b"someone else's"))
        .await
        .unwrap();
    let http = reqwest::Client::new();

    let url = store
        .presigned_get("results/task-1.zip", Duration::from_secs(300))
        .await
        .unwrap()
        .expect("an S3 store presigns");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(!url.contains(SECRET_KEY));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert!(resp.bytes().await.unwrap() == body);

    // A changed signature.
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    let resp = http.get(&tampered).send().await.unwrap();
    assert_eq!(
        resp.status(),
        reqwest::StatusCode::FORBIDDEN,
        "tampered signature"
    );

    // The same signature on another key.
    let other = url.replace("task-1.zip", "task-2.zip");
    assert_ne!(other, url);
    let resp = http.get(&other).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN, "other key");

    // A longer lifetime than was signed.
    let stretched = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    assert_ne!(stretched, url);
    let resp = http.get(&stretched).send().await.unwrap();
    assert_eq!(
        resp.status(),
        reqwest::StatusCode::FORBIDDEN,
        "stretched expiry"
    );

    // No signature at all.
    let bare = format!("{}/{BUCKET}/results/task-1.zip", server.endpoint());
    let resp = http.get(&bare).send().await.unwrap();
    assert!(
        resp.status().is_client_error(),
        "unsigned GET answered {}",
        resp.status()
    );

    // Expired: signed for one second (the signing time has one-second resolution).
    let short = store
        .presigned_get("results/task-1.zip", Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = http.get(&short).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN, "expired");
}

#[tokio::test]
async fn bucket_prefixes_are_applied_to_keys_and_presigned_urls() {
    let (server, root) = setup().await;
    let store = BlobStore::from_url(&server.url_with(
        &format!("{BUCKET}/tenant-a"),
        ACCESS_KEY,
        SECRET_KEY,
    ))
    .unwrap();
    store
        .put("results/r.zip", Bytes::from_static(b"zip"))
        .await
        .unwrap();
    assert_eq!(
        root.get("tenant-a/results/r.zip").await.unwrap(),
        Bytes::from_static(b"zip")
    );
    assert_eq!(root.size("results/r.zip").await.unwrap(), None);

    let url = store
        .presigned_get("results/r.zip", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("/tenant-a/results/r.zip?"), "{url}");
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), Bytes::from_static(b"zip"));

    store.delete_prefix("results").await.unwrap();
    assert_eq!(root.size("tenant-a/results/r.zip").await.unwrap(), None);
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_never_printed() {
    let (server, store) = setup().await;
    let wrong =
        BlobStore::from_url(&server.url_with(BUCKET, ACCESS_KEY, "not-the-secret-Zq7")).unwrap();
    let err = wrong
        .put("uploads/x.csv", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Store(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("not-the-secret-Zq7"));

    let debug = format!("{wrong:?}");
    assert!(debug.contains(BUCKET), "{debug}");
    assert!(!debug.contains("not-the-secret-Zq7"), "{debug}");
    assert!(!format!("{store:?}").contains(SECRET_KEY));
}

#[tokio::test]
async fn local_stores_are_not_remote_and_do_not_presign() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("blobs").display());
    let store = BlobStore::from_url(&url).unwrap();
    assert!(!store.is_remote());
    store
        .put("a/b.csv", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(dir.path().join("blobs/a/b.csv").is_file());
    assert_eq!(
        store
            .presigned_get("a/b.csv", Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    let plain = BlobStore::from_url(dir.path().join("blobs").to_str().unwrap()).unwrap();
    assert_eq!(
        plain.get("a/b.csv").await.unwrap(),
        Bytes::from_static(b"x")
    );
}
