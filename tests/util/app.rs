//! An in-process server for HTTP tests: the real router and engine on an ephemeral port,
//! a temporary data directory and a fake clock (which also drives the rate limiters).

use std::sync::Arc;

use memora::clock::FakeClock;
use memora::config::Config;
use memora::engine::Engine;
use memora::engine::accounts::NewPlayer;
use memora::players::account::Role;
use reqwest::Method;
use serde_json::json;

use super::api::{Api, Session};
use super::{device_id_for, fixture};

pub const ADMIN: &str = "admin@test.memora";
pub const PASSWORD: &str = "password-1234";

/// A server running in this process (the real router and engine, a fake clock).
pub struct TestApp {
    /// Client bound to the server.
    pub api: Api,
    /// The engine's (and rate limiters') clock.
    pub clock: FakeClock,
    /// The running engine (a handle; replaced on restart), for what HTTP does not show:
    /// journal counters, background jobs run on demand.
    pub engine: Option<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    storage: Option<Arc<dyn memora::persist::journal::Storage>>,
}

fn config(dir: &std::path::Path, extra: &[(String, String)]) -> Config {
    let snapshots = dir.join("snapshots");
    Config::load(
        None,
        [
            ("MEMORA_STORAGE__DATA_DIR", dir.to_str().expect("utf8 path")),
            (
                "MEMORA_STORAGE__SNAPSHOTS_DIR",
                snapshots.to_str().expect("utf8 path"),
            ),
            ("MEMORA_HTTP__ADDR", "127.0.0.1:0"),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into_iter()
        .chain(extra.iter().cloned()),
    )
    .expect("test config")
}

impl TestApp {
    /// A server with the test configuration.
    pub async fn start() -> TestApp {
        TestApp::start_with(&[]).await
    }

    /// A server with extra `MEMORA_*` settings.
    pub async fn start_with(env: &[(&str, &str)]) -> TestApp {
        TestApp::start_with_storage(env, None).await
    }

    /// A server whose journal I/O goes through `storage` (fault injection), with extra
    /// `MEMORA_*` settings.
    pub async fn start_with_storage(
        env: &[(&str, &str)],
        storage: Option<Arc<dyn memora::persist::journal::Storage>>,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = FakeClock::new("2026-11-21T09:00:00Z".parse().expect("ts"));
        let mut app = TestApp {
            api: Api::new("http://127.0.0.1:1"),
            clock,
            engine: None,
            stop: None,
            handle: None,
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            storage,
        };
        app.boot(true).await;
        app
    }

    async fn boot(&mut self, first: bool) {
        let storage = self
            .storage
            .clone()
            .unwrap_or_else(|| Arc::new(memora::persist::journal::FileStorage));
        let engine = Engine::open_with_storage(
            config(self.dir.path(), &self.env),
            Arc::new(self.clock.clone()),
            storage,
        )
        .expect("engine");
        if first {
            engine
                .create_player(NewPlayer {
                    email: ADMIN.into(),
                    password: PASSWORD.into(),
                    display_name: "Admin".into(),
                    role: Some(Role::Admin),
                    plan_id: None,
                    grade: None,
                    stream: None,
                    timezone: None,
                    grants: vec![],
                })
                .await
                .expect("admin");
        }
        self.engine = Some(engine.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.handle = Some(tokio::spawn(memora::app::serve(
            engine,
            listener,
            async move {
                let _ = rx.await;
            },
        )));
        self.stop = Some(tx);
        self.api = Api::new(&format!("http://{addr}"));
    }

    /// Sets a `MEMORA_*` setting for the next [`TestApp::restart`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Graceful shutdown then a fresh engine on the same data dir.
    pub async fn restart(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("clean shutdown");
        }
        // The old engine must be gone before the redb file is opened again.
        self.engine = None;
        self.boot(false).await;
    }

    /// The data directory (redb file and journal).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The running engine.
    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine running")
    }

    pub async fn admin(&self) -> Session {
        self.api
            .login(ADMIN, PASSWORD, &device_id_for(ADMIN))
            .await
            .expect("admin login")
    }

    /// Imports the fixtures (basics + chain + plan `school`) and creates a student.
    pub async fn school(&self, email: &str, tz: &str) -> Session {
        let admin = self.admin().await;
        for name in ["basics.subject.json", "chain.subject.json"] {
            let status = self
                .api
                .put_subject(&admin, &fixture(name))
                .await
                .expect("subject");
            assert!(status == 201 || status == 200);
        }
        self.api
            .put_plan(&admin, &fixture("school.plan.json"))
            .await
            .expect("plan");
        self.api
            .call(
                Method::POST,
                "/api/v1/admin/players",
                Some(&admin),
                Some(&json!({"email": email, "password": PASSWORD, "display_name": "Student", "plan_id": "school", "timezone": tz})),
            )
            .await
            .expect("student");
        self.api
            .login(email, PASSWORD, &device_id_for(email))
            .await
            .expect("student login")
    }
}
