//! The object-store contract, written once and run against every implementation.
//! Each backend module below builds a fresh, empty store and runs every check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use darkroom_store::{delete_prefix, ObjectStore, PutOutcome};
use futures::TryStreamExt;

async fn put_then_get_returns_the_same_bytes(store: &dyn ObjectStore) {
    store.put("a/b/one.bin", Bytes::from_static(b"hello"), "application/octet-stream").await.unwrap();
    assert_eq!(store.get("a/b/one.bin").await.unwrap(), Bytes::from_static(b"hello"));
    store.put("a/b/one.bin", Bytes::from_static(b"replaced"), "application/octet-stream").await.unwrap();
    assert_eq!(store.get("a/b/one.bin").await.unwrap(), Bytes::from_static(b"replaced"));
    assert_eq!(store.head("a/b/one.bin").await.unwrap().map(|m| m.size), Some(8));
}

async fn missing_objects_are_not_found(store: &dyn ObjectStore) {
    assert!(store.get("nothing/here").await.unwrap_err().is_not_found());
    assert!(store.head("nothing/here").await.unwrap().is_none());
    store.delete("nothing/here").await.unwrap();
}

async fn put_if_absent_never_overwrites(store: &dyn ObjectStore) {
    let first = store.put_if_absent("once/key", Bytes::from_static(b"first"), "text/plain").await.unwrap();
    let second = store.put_if_absent("once/key", Bytes::from_static(b"second"), "text/plain").await.unwrap();
    assert_eq!((first, second), (PutOutcome::Created, PutOutcome::AlreadyExists));
    assert_eq!(store.get("once/key").await.unwrap(), Bytes::from_static(b"first"));
}

async fn concurrent_put_if_absent_has_one_winner(store: &dyn ObjectStore) {
    let attempts = (0..8).map(|i| store.put_if_absent("race/key", Bytes::from(format!("writer {i}")), "text/plain"));
    let outcomes = futures::future::join_all(attempts).await;
    let created = outcomes.iter().filter(|o| matches!(o, Ok(PutOutcome::Created))).count();
    assert_eq!(created, 1, "{outcomes:?}");
}

async fn list_returns_keys_under_a_prefix_sorted(store: &dyn ObjectStore) {
    for key in ["l/x/2", "l/x/1", "l/x/sub/3", "l/y/4", "l/xz"] {
        store.put(key, Bytes::from_static(b"."), "text/plain").await.unwrap();
    }
    let keys: Vec<String> = store.list("l/x/").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["l/x/1", "l/x/2", "l/x/sub/3"]);
    let keys: Vec<String> = store.list("l/x").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["l/x/1", "l/x/2", "l/x/sub/3", "l/xz"]);
    assert!(store.list("l/none/").await.unwrap().is_empty());
}

async fn streamed_upload_appears_only_when_finished(store: &dyn ObjectStore) {
    // Nine MiB: more than one 8 MiB part of an S3 multipart upload.
    let mut upload = store.start_upload("up/big", "application/octet-stream").await.unwrap();
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..9 {
        upload.write(chunk.clone()).await.unwrap();
    }
    assert!(store.head("up/big").await.unwrap().is_none(), "visible before finish");
    assert_eq!(upload.finish().await.unwrap(), 9 << 20);
    let (meta, stream) = store.get_stream("up/big").await.unwrap();
    assert_eq!(meta.size, 9 << 20);
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 9 << 20);
    assert!(chunks.iter().all(|c| c.iter().all(|&b| b == 7)));

    let mut aborted = store.start_upload("up/aborted", "application/octet-stream").await.unwrap();
    for _ in 0..9 {
        aborted.write(chunk.clone()).await.unwrap();
    }
    aborted.abort().await;
    assert!(store.head("up/aborted").await.unwrap().is_none());
}

async fn delete_is_final_and_prefix_delete_removes_everything(store: &dyn ObjectStore) {
    for key in ["d/1", "d/2/3", "d/2/4"] {
        store.put(key, Bytes::from_static(b"."), "text/plain").await.unwrap();
    }
    store.delete("d/1").await.unwrap();
    assert!(store.head("d/1").await.unwrap().is_none());
    assert_eq!(delete_prefix(store, "d/").await.unwrap(), 2);
    assert!(store.list("d/").await.unwrap().is_empty());
    // The emptied directories may be re-used at once.
    store.put("d/2/5", Bytes::from_static(b"."), "text/plain").await.unwrap();
    assert!(store.head("d/2/5").await.unwrap().is_some());
}

async fn rejects_keys_that_escape(store: &dyn ObjectStore) {
    for key in ["../outside", "a/../../b", "/abs", ""] {
        assert!(store.put(key, Bytes::from_static(b"."), "text/plain").await.is_err(), "{key:?} accepted");
        assert!(store.get(key).await.is_err());
    }
}

async fn check_succeeds_on_a_healthy_store(store: &dyn ObjectStore) {
    store.check().await.unwrap();
}

async fn pages_resume_after_a_key_and_bulk_deletes_clear_a_prefix(store: &dyn ObjectStore) {
    let keys: Vec<String> = (0..25).map(|i| format!("page/k{i:03}")).collect();
    for key in &keys {
        store.put(key, Bytes::from_static(b"."), "text/plain").await.unwrap();
    }
    store.put("pagez/outside", Bytes::from_static(b"."), "text/plain").await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_page("page/", after.as_deref(), 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = page.last().map(|m| m.key.clone());
        seen.extend(page.into_iter().map(|m| m.key));
    }
    assert_eq!(seen, keys);
    store.delete_many(&keys[..20]).await.unwrap();
    store.delete_many(&keys[..20]).await.unwrap(); // again: missing keys are not an error
    let left: Vec<String> = store.list("page/").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(left, keys[20..]);
    assert_eq!(delete_prefix(store, "page/").await.unwrap(), 5);
    assert_eq!(store.list("pagez/").await.unwrap().len(), 1, "a prefix delete went past its prefix");
}

/// Every check of the contract, for `darkroom_testkit::contract_tests!`.
macro_rules! every_check {
    ($make:path) => {
        darkroom_testkit::contract_tests!($make;
            put_then_get_returns_the_same_bytes,
            missing_objects_are_not_found,
            put_if_absent_never_overwrites,
            concurrent_put_if_absent_has_one_winner,
            list_returns_keys_under_a_prefix_sorted,
            streamed_upload_appears_only_when_finished,
            delete_is_final_and_prefix_delete_removes_everything,
            rejects_keys_that_escape,
            pages_resume_after_a_key_and_bulk_deletes_clear_a_prefix,
            check_succeeds_on_a_healthy_store);
    };
}

mod local {
    use super::*;

    async fn make() -> Option<(Box<dyn ObjectStore>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let store = darkroom_store::LocalStore::open(dir.path()).unwrap();
        Some((Box::new(store), dir))
    }

    every_check!(make);

    #[tokio::test]
    async fn a_dropped_upload_leaves_no_temp_file() {
        let (store, dir) = make().await.unwrap();
        let mut upload = store.start_upload("x/y", "text/plain").await.unwrap();
        upload.write(Bytes::from_static(b"partial")).await.unwrap();
        drop(upload);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(store.head("x/y").await.unwrap().is_none());
    }
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use darkroom_store::aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use darkroom_store::S3Store;

    /// An S3 client for LocalStack.
    fn client(endpoint: String) -> darkroom_store::aws_sdk_s3::Client {
        let config = darkroom_store::aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "contract-tests"))
            .force_path_style(true)
            .build();
        darkroom_store::aws_sdk_s3::Client::from_conf(config)
    }

    async fn make() -> Option<(Box<dyn ObjectStore>, ())> {
        let bucket = format!("contract-{:08x}", rand::random::<u32>());
        let store = S3Store::new(client(darkroom_testkit::localstack_endpoint()?), bucket);
        store.create_bucket(None).await.unwrap();
        Some((Box::new(store), ()))
    }

    every_check!(make);

    /// A stand-in for S3 that answers each PUT with the next status of `script` (then 200),
    /// counting the PUTs: S3's 409 is a race whose outcome a test cannot order on LocalStack.
    fn scripted_s3(script: Vec<(u16, &'static str)>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = puts.clone();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else { return };
                let mut reader = BufReader::new(connection.try_clone().unwrap());
                let mut writer = connection;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (status, code) = script.get(n).copied().unwrap_or((200, ""));
                    let body = if status == 200 {
                        String::new()
                    } else {
                        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>scripted</Message></Error>")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} Scripted\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nETag: \"e\"\r\n\r\n{body}",
                        body.len()
                    );
                    if writer.write_all(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (endpoint, puts)
    }

    /// S3's 409 ConditionalRequestConflict means another request on the key was in flight,
    /// possibly a delete: the key is not known to exist. The put is tried again, and what
    /// the retry finds is the answer (a seat released meanwhile is free, not taken).
    #[tokio::test]
    async fn a_conditional_put_that_conflicts_is_tried_again_not_taken_for_existing() {
        let conflict = (409, "ConditionalRequestConflict");
        let (endpoint, puts) = scripted_s3(vec![conflict, conflict]);
        let store = S3Store::new(client(endpoint), "b");
        let outcome = store.put_if_absent("seats/1", Bytes::from_static(b"x"), "text/plain").await.unwrap();
        assert_eq!(outcome, PutOutcome::Created);
        assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 3);

        let (endpoint, _) = scripted_s3(vec![conflict, (412, "PreconditionFailed")]);
        let store = S3Store::new(client(endpoint), "b");
        let outcome = store.put_if_absent("seats/1", Bytes::from_static(b"x"), "text/plain").await.unwrap();
        assert_eq!(outcome, PutOutcome::AlreadyExists);

        let (endpoint, _) = scripted_s3(vec![conflict; 50]);
        let store = S3Store::new(client(endpoint), "b");
        let error = store.put_if_absent("seats/1", Bytes::from_static(b"x"), "text/plain").await.unwrap_err();
        assert!(error.is_retryable(), "a conflict that does not clear is an outage to retry: {error}");
    }

    #[tokio::test]
    async fn a_missing_bucket_says_to_run_setup() {
        let Some(endpoint) = darkroom_testkit::localstack_endpoint() else { return };
        let missing = S3Store::new(client(endpoint), "no-such-bucket-darkroom");
        let error = missing.check().await.unwrap_err();
        assert!(error.to_string().contains("darkroom setup"), "{error}");
    }
}
