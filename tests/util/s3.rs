//! A real S3-compatible server on loopback for upload tests (issue 4: "not a mock
//! object"): the one `MEMORA_TEST_S3_URL` names, or a `moto` server
//! (`python3 -m moto.server`, installed by `.ci/run`) started for the test. `None` when
//! neither is available: the test then prints a skip line. Also a TCP proxy that can cut
//! the path to the server ("server stopped") and an object-store wrapper recording the
//! order of operations.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use memora::objstore::S3Config;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

/// An S3-compatible server (stopped on drop when this test started it).
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Option<Child>,
    http: reqwest::Client,
    /// One client per bucket for [`S3Server::get`].
    readers: Mutex<std::collections::HashMap<String, memora::objstore::Bucket>>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The line a test prints when it cannot run.
pub fn skip(test: &str) {
    eprintln!(
        "skipping {test}: no S3-compatible server (set MEMORA_TEST_S3_URL, or `python3 -m pip install 'moto[server]'`)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl S3Server {
    /// The server of `MEMORA_TEST_S3_URL`, or a fresh moto server; `None` if neither.
    pub async fn start() -> Option<S3Server> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        if let Ok(url) = std::env::var("MEMORA_TEST_S3_URL")
            && !url.trim().is_empty()
        {
            return Some(S3Server {
                url: url.trim().trim_end_matches('/').to_owned(),
                child: None,
                http,
                readers: Mutex::default(),
            });
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut server = S3Server {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            http,
            readers: Mutex::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = &mut server.child
                && child.try_wait().ok().flatten().is_some()
            {
                server.child = None;
                return None; // exited: moto is not installed
            }
            if server.http.get(&server.url).send().await.is_ok() {
                return Some(server);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a bucket with a fresh name and returns the name.
    pub async fn new_bucket(&self) -> String {
        let name = format!("memora-{}", uuid::Uuid::new_v4().simple());
        let res = self
            .http
            .put(format!("{}/{name}", self.url))
            .send()
            .await
            .expect("create bucket");
        assert!(res.status().is_success(), "create bucket: {}", res.status());
        name
    }

    /// `[cdn.s3]` settings for `bucket` on `endpoint` (this server or a proxy to it).
    pub fn config(endpoint: &str, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            endpoint: endpoint.to_owned(),
            bucket: bucket.to_owned(),
            region: "us-east-1".into(),
            prefix: prefix.to_owned(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        }
    }

    /// A signed `GET` of `{bucket}/{key}` (moto refuses anonymous reads): status,
    /// `Content-Type`, `Cache-Control` (from the response headers) and body.
    pub async fn get(&self, bucket: &str, key: &str) -> (u16, String, String, Bytes) {
        use object_store::{Attribute, ObjectStoreExt};
        let store = {
            let mut readers = self.readers.lock();
            readers
                .entry(bucket.to_owned())
                .or_insert_with(|| {
                    memora::objstore::Bucket::open(&S3Server::config(&self.url, bucket, ""))
                        .expect("bucket")
                })
                .clone()
        };
        match store.store().get(&Path::parse(key).expect("key")).await {
            Ok(got) => {
                let attr = |a: &Attribute| {
                    got.attributes
                        .get(a)
                        .map(|v| v.as_ref().to_owned())
                        .unwrap_or_default()
                };
                let (ct, cc) = (
                    attr(&Attribute::ContentType),
                    attr(&Attribute::CacheControl),
                );
                (200, ct, cc, got.bytes().await.expect("body"))
            }
            Err(object_store::Error::NotFound { .. }) => {
                (404, String::new(), String::new(), Bytes::new())
            }
            Err(e) => panic!("get {key}: {e}"),
        }
    }
}

/// A TCP proxy to the server whose path can be cut: while down, new connections are
/// closed at once and open ones are dropped — to the client, the server is gone.
pub struct Proxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// A proxy to `target` (`http://host:port`), up.
    pub async fn start(target: &str) -> Proxy {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (up, rx) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = rx.clone();
                if !*rx.borrow() {
                    continue; // dropped: the connection closes
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { url, up, task }
    }

    /// Cuts (`false`) or restores (`true`) the path to the server.
    pub fn set_up(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

/// One recorded operation: `(sequence, "put" | "delete", key, "start" | "end")`.
pub type Event = (u64, &'static str, String, &'static str);

/// An object store recording when each put and delete starts and ends, around the
/// real one.
#[derive(Debug)]
pub struct Recorder {
    inner: Arc<dyn ObjectStore>,
    seq: Arc<AtomicU64>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl std::fmt::Display for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recorder({})", self.inner)
    }
}

impl Recorder {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Recorder {
        Recorder {
            inner,
            seq: Arc::new(AtomicU64::new(0)),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn note(&self, op: &'static str, key: &Path, phase: &'static str) {
        note(&self.seq, &self.events, op, key.to_string(), phase);
    }

    /// Takes the events recorded so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock())
    }
}

fn note(
    seq: &AtomicU64,
    events: &Mutex<Vec<Event>>,
    op: &'static str,
    key: String,
    phase: &'static str,
) {
    let n = seq.fetch_add(1, Ordering::SeqCst);
    events.lock().push((n, op, key, phase));
}

#[async_trait]
impl ObjectStore for Recorder {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.note("put", location, "start");
        let r = self.inner.put_opts(location, payload, opts).await;
        if r.is_ok() {
            self.note("put", location, "end");
        }
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let (seq, events) = (self.seq.clone(), self.events.clone());
        let starts = locations
            .map(move |p| {
                if let Ok(p) = &p {
                    note(&seq, &events, "delete", p.to_string(), "start");
                }
                p
            })
            .boxed();
        let (seq, events) = (self.seq.clone(), self.events.clone());
        self.inner
            .delete_stream(starts)
            .map(move |p| {
                if let Ok(p) = &p {
                    note(&seq, &events, "delete", p.to_string(), "end");
                }
                p
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Checks the upload order of one flush: every put of a non-manifest file ended before
/// the first manifest put started, and every put ended before the first delete started.
/// Returns the keys put and deleted.
pub fn assert_manifest_last(events: &[Event]) -> (Vec<String>, Vec<String>) {
    let is_manifest = |k: &str| k.ends_with("/manifest.json");
    let last_end = |pred: &dyn Fn(&Event) -> bool| {
        events
            .iter()
            .filter(|e| e.3 == "end" && pred(e))
            .map(|e| e.0)
            .max()
    };
    let first_start = |pred: &dyn Fn(&Event) -> bool| {
        events
            .iter()
            .filter(|e| e.3 == "start" && pred(e))
            .map(|e| e.0)
            .min()
    };
    let files_done = last_end(&|e| e.1 == "put" && !is_manifest(&e.2));
    let manifests_start = first_start(&|e| e.1 == "put" && is_manifest(&e.2));
    if let (Some(done), Some(start)) = (files_done, manifests_start) {
        assert!(
            done < start,
            "a manifest put started before the files: {events:?}"
        );
    }
    let puts_done = last_end(&|e| e.1 == "put");
    let deletes_start = first_start(&|e| e.1 == "delete");
    if let (Some(done), Some(start)) = (puts_done, deletes_start) {
        assert!(
            done < start,
            "a delete started before the puts ended: {events:?}"
        );
    }
    let keys = |op: &str| {
        events
            .iter()
            .filter(|e| e.1 == op && e.3 == "end")
            .map(|e| e.2.clone())
            .collect()
    };
    (keys("put"), keys("delete"))
}
