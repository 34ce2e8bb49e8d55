//! The blob store against a real S3-compatible server: `s3s-fs`, started on loopback with a
//! temporary root folder for each test and killed when the test ends (see
//! [`numcheck_testkit::S3Server`]). Without `s3s-fs` the tests fail with the command that
//! installs it; `S3S_FS` may name the binary explicitly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use numcheck_blob::{BlobError, BlobStore};
use numcheck_testkit::S3Server;
use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

const ACCESS_KEY: &str = S3Server::ACCESS_KEY;
const SECRET_KEY: &str = S3Server::SECRET_KEY;
const BUCKET: &str = S3Server::BUCKET;

/// A plain `object_store` client on the test bucket, to look behind the blob store.
fn raw(server: &S3Server) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .with_allow_http(true)
        .build()
        .unwrap()
}

/// A server with the test bucket, and a store on it.
fn setup() -> (S3Server, BlobStore) {
    let server = S3Server::start();
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
    let (_server, store) = setup();
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
    let (server, store) = setup();
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
    let meta = raw(&server)
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
    let (_server, store) = setup();

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
    let (_server, store) = setup();
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
    let (server, store) = setup();
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
    let (server, root) = setup();
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
    let (server, store) = setup();
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
