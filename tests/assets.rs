//! Content assets over HTTP: an admin stores, replaces and deletes media under
//! `/api/v1/admin/assets/{path}`; `/content/assets/{path}` serves them; bad paths,
//! students and anonymous callers are refused; a build leaves assets alone.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use memora::engine::accounts::NewPlayer;
use memora::players::account::Role;
use tower::ServiceExt;

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        // `token` may carry a device id after a space (students).
        let (t, device) = t.split_once(' ').unwrap_or((t, ""));
        req = req.header("authorization", format!("Bearer {t}"));
        if !device.is_empty() {
            req = req.header("x-device-id", device);
        }
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("response");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, headers, bytes.to_vec())
}

#[tokio::test]
async fn assets_are_stored_served_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = memora::config::Config::load(
        None,
        [
            (
                "MEMORA_STORAGE__DATA_DIR",
                dir.path().to_str().expect("utf8"),
            ),
            ("MEMORA_AUTH__ARGON2_MEMORY_KIB", "64"),
            ("MEMORA_AUTH__ARGON2_ITERATIONS", "1"),
            ("MEMORA_LOG__LEVEL", "warn"),
            ("MEMORA_CONTENT__MIN_FREE_DISK_PERCENT", "0"),
            ("MEMORA_HTTP__ADMIN_BODY_LIMIT_BYTES", "2097152"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("config");
    let engine =
        memora::engine::Engine::open(config, Arc::new(memora::clock::SystemClock)).expect("engine");
    for (email, role) in [("a@x.org", Role::Admin), ("s@x.org", Role::Student)] {
        engine
            .create_player(NewPlayer {
                email: email.into(),
                password: "password-1234".into(),
                display_name: "X".into(),
                role: Some(role),
                plan_id: None,
                grade: None,
                stream: None,
                timezone: None,
                grants: vec![],
            })
            .await
            .expect("player");
    }
    let admin = engine
        .login("a@x.org", "password-1234", None, None)
        .await
        .expect("admin login")
        .token;
    let device = uuid::Uuid::new_v4().to_string();
    let student = engine
        .login("s@x.org", "password-1234", Some(&device), None)
        .await
        .expect("student login")
        .token;
    let student = format!("{student} {device}");
    let router = memora::http::router(engine.clone());
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3, 4];

    let (status, _, body) = call(
        &router,
        "PUT",
        "/api/v1/admin/assets/img/logo.png",
        Some(&admin),
        png.clone(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["url"], "assets/img/logo.png");
    assert_eq!(answer["content_type"], "image/png");
    let (status, headers, body) =
        call(&router, "GET", "/content/assets/img/logo.png", None, vec![]).await;
    assert_eq!((status, body), (200, png.clone()));
    assert_eq!(headers["content-type"], "image/png");

    // Replacing answers 200 and serves the new bytes.
    let (status, _, _) = call(
        &router,
        "PUT",
        "/api/v1/admin/assets/img/logo.png",
        Some(&admin),
        b"new".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, body) = call(&router, "GET", "/content/assets/img/logo.png", None, vec![]).await;
    assert_eq!(body, b"new");

    // Refusals: students, anonymous callers, hostile paths, unknown types, too large.
    let (status, _, _) = call(
        &router,
        "PUT",
        "/api/v1/admin/assets/x.png",
        None,
        png.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, body) = call(
        &router,
        "PUT",
        "/api/v1/admin/assets/x.png",
        Some(&student),
        png.clone(),
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    for bad in [
        "/api/v1/admin/assets/..%2F..%2Fmemora.redb.png",
        "/api/v1/admin/assets/img/%2E%2E/x.png",
        "/api/v1/admin/assets/.hidden.png",
        "/api/v1/admin/assets/run.exe",
        "/api/v1/admin/assets/x.json",
    ] {
        let (status, headers, _) = call(&router, "PUT", bad, Some(&admin), png.clone()).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }
    let (status, _, _) = call(
        &router,
        "PUT",
        "/api/v1/admin/assets/big.png",
        Some(&admin),
        vec![0; 3 << 20],
    )
    .await;
    assert_eq!(status, 413);
    assert!(!dir.path().join("cdn/assets/big.png").exists());
    assert!(!dir.path().join("memora.redb.png").exists());

    // Delete, then it is gone.
    let (status, _, _) = call(
        &router,
        "DELETE",
        "/api/v1/admin/assets/img/logo.png",
        Some(&admin),
        vec![],
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = call(&router, "GET", "/content/assets/img/logo.png", None, vec![]).await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        &router,
        "DELETE",
        "/api/v1/admin/assets/img/logo.png",
        Some(&admin),
        vec![],
    )
    .await;
    assert_eq!(status, 404);
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .expect("join")
        .expect("shutdown");
}
