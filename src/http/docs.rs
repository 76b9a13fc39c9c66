//! `GET /docs`: the interactive API reference (RapiDoc, vendored in `vendor/rapidoc/`
//! and embedded in the binary), reading `/openapi.json`. It loads nothing from the
//! internet — schools may run without it — and a Content-Security-Policy limited to
//! this server makes the browser refuse any attempt (fonts, scripts, fetches).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The vendored RapiDoc version; part of the script URL, so browsers may cache it for
/// good.
pub const RAPIDOC_VERSION: &str = "9.3.8";
/// The page.
pub const PAGE_PATH: &str = "/docs";
/// The script (versioned).
pub const SCRIPT_PATH: &str = "/docs/rapidoc-9.3.8.min.js";
/// The licenses of the script.
pub const LICENSE_PATH: &str = "/docs/rapidoc-license.txt";

const SCRIPT: &[u8] = include_bytes!("../../vendor/rapidoc/rapidoc-min.js");
const SCRIPT_GZ: &[u8] = include_bytes!("../../vendor/rapidoc/rapidoc-min.js.gz");
const LICENSES: &str = concat!(
    include_str!("../../vendor/rapidoc/LICENSE.txt"),
    "\n\nBundled third-party notices:\n\n",
    include_str!("../../vendor/rapidoc/rapidoc-min.js.LICENSE.txt"),
);

/// Only this server: no CDN, no web font, no request elsewhere. Styles may be inline
/// (RapiDoc's web components set them).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'self'";

/// URLs are relative (`openapi.json`, `docs/…`), so the page also works behind a
/// reverse proxy that serves Memora under a path prefix.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Memora API reference</title>
<script type="module" src="docs/rapidoc-9.3.8.min.js"></script>
</head>
<body>
<rapi-doc
  spec-url="openapi.json"
  heading-text="Memora API"
  theme="light"
  render-style="read"
  schema-style="table"
  show-header="false"
  allow-try="true"
  allow-authentication="true"
  persist-auth="false"
  allow-server-selection="false"
  allow-spec-url-load="false"
  allow-spec-file-load="false"
  load-fonts="false"
  regular-font="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
  mono-font="ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"
></rapi-doc>
<noscript>This page needs JavaScript; the raw document is at <a href="openapi.json">openapi.json</a>.</noscript>
</body>
</html>
"#;

/// The reference page, its script and the script's licenses.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PAGE_PATH, get(page))
        .route(SCRIPT_PATH, get(script))
        .route(LICENSE_PATH, get(licenses))
}

fn with_headers(mut response: Response, pairs: &[(header::HeaderName, &'static str)]) -> Response {
    let headers = response.headers_mut();
    for (name, value) in pairs {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

async fn page() -> Response {
    with_headers(
        (StatusCode::OK, PAGE).into_response(),
        &[
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
}

/// Whether `Accept-Encoding` admits gzip (`gzip`, `x-gzip` or `*`, without `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && !refused
        })
}

async fn script(headers: HeaderMap) -> Response {
    let shared = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (header::VARY, "accept-encoding"),
    ];
    if accepts_gzip(&headers) {
        let response = with_headers((StatusCode::OK, SCRIPT_GZ).into_response(), &shared);
        with_headers(response, &[(header::CONTENT_ENCODING, "gzip")])
    } else {
        with_headers((StatusCode::OK, SCRIPT).into_response(), &shared)
    }
}

async fn licenses() -> Response {
    with_headers(
        (StatusCode::OK, LICENSES).into_response(),
        &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(&accept("gzip, deflate, br")));
        assert!(accepts_gzip(&accept("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&accept("*")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&accept("br, identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert!(PAGE.contains(SCRIPT_PATH.trim_start_matches('/')));
        assert!(SCRIPT_PATH.contains(RAPIDOC_VERSION));
        // The vendored files are the package's own: the gzip is the same script.
        assert!(SCRIPT.len() > 100_000 && SCRIPT_GZ.starts_with(&[0x1f, 0x8b]));
    }
}
