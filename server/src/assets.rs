//! How the browser gets the site: `/pkg/*` (the WebAssembly, its JavaScript and the stylesheet)
//! from the copies the release build precompressed (brotli, then gzip) when the browser takes
//! them, and kept for a year when their names carry a content hash, which a new build changes.
//! Everything else the service answers (pages, server functions, plugin JSON) is compressed as it
//! is sent, at a low level that costs little CPU; server-sent events never are.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
    Router,
};
use leptos::config::LeptosOptions;
use tower_http::{
    compression::{
        predicate::{Predicate, SizeAbove},
        CompressionLayer, CompressionLevel,
    },
    services::ServeDir,
};

/// Hashed names never change content: browsers may keep them and need not ask again.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// A name without a hash may change under the same name: the browser asks each time (a 304 when
/// nothing changed).
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// Whether the pages must name the assets by their hashes: as `LEPTOS_HASH_FILES` says, or, when
/// it is not set, when the build left its list of hashes beside this binary (a binary started
/// directly, not by the build tool, then still finds its stylesheet and script).
pub fn hashed_names(options: &LeptosOptions) -> bool {
    if std::env::var_os("LEPTOS_HASH_FILES").is_some() {
        return options.hash_files;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(options.hash_file.as_ref())))
        .is_some_and(|list| list.is_file())
}

/// The `/pkg` files, served from the site's package directory.
pub fn pkg_router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn(cache_control))
}

async fn cache_control(req: Request, next: Next) -> Response {
    let hashed = is_hashed(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == axum::http::StatusCode::NOT_MODIFIED {
        let value = if hashed { IMMUTABLE } else { REVALIDATE };
        res.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    res
}

/// `pinpoint-hibob.Zx3kq9y1BfA.wasm`: a name with a content hash between its stem and extension.
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| {
            p.len() >= 8
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Compression of what the service renders as it answers: brotli or gzip at level 4, which gets
/// most of the saving for a fraction of the highest level's CPU.
pub fn compression() -> CompressionLayer<Rendered> {
    CompressionLayer::new()
        .br(true)
        .gzip(true)
        .quality(CompressionLevel::Precise(4))
        .compress_when(Rendered)
}

/// Only what the service renders (pages, JSON, CSV, text) and is worth it is compressed on the
/// fly. Files, the WebAssembly above all, are sent as built or from their precompressed copies:
/// compressing megabytes for every request would hand anyone who asks for them the CPU.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

impl Predicate for Rendered {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        let rendered = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                ["text/html", "application/json", "text/csv", "text/plain"]
                    .iter()
                    .any(|kind| t.starts_with(kind))
            });
        rendered && SizeAbove::new(256).should_compress(response)
    }
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn only_names_with_a_content_hash_are_immutable() {
        assert!(is_hashed("/pkg/pinpoint-hibob.Zx3kq9y1BfA_-9.wasm"));
        assert!(is_hashed("/pkg/pinpoint-hibob.Zx3kq9y1BfA.css"));
        assert!(!is_hashed("/pkg/pinpoint-hibob.wasm"));
        assert!(!is_hashed("/pkg/pinpoint-hibob_bg.wasm"));
        assert!(!is_hashed("/pkg/a.b.css"));
        assert!(!is_hashed("/pkg/"));
    }
}
