//! `rvbox web` and `rvbox serve`: a module as a static web site with a terminal, and a
//! small local HTTP server for such sites.
//!
//! The site's own code lives in `runner/web/` (the page `main.js`, the worker `worker.js`
//! that runs the module with browser_wasi_shim, the stdin channel `channel.js`, the
//! service worker `sw.js`) and the npm packages it uses in `runner/web/node_modules`
//! (installed by `npm ci` from the lockfile); all of them are embedded in the binary at
//! build time (`build.rs` checks the packages are there), so `rvbox web` needs nothing at
//! run time and the site loads nothing from elsewhere.
//!
//! **The server knows nothing about modules**: it serves files under one directory, with
//! the cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

macro_rules! asset {
    ($site:literal, $src:literal) => {
        (
            $site,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $src)) as &[u8],
        )
    };
}

/// (path in the site, contents) of every file a site has besides its module and config.
const ASSETS: &[(&str, &[u8])] = &[
    asset!("index.html", "index.html"),
    asset!("main.js", "main.js"),
    asset!("worker.js", "worker.js"),
    asset!("channel.js", "channel.js"),
    asset!("sw.js", "sw.js"),
    asset!("vendor/xterm.js", "node_modules/@xterm/xterm/lib/xterm.js"),
    asset!(
        "vendor/xterm.css",
        "node_modules/@xterm/xterm/css/xterm.css"
    ),
    asset!("vendor/LICENSE.xterm", "node_modules/@xterm/xterm/LICENSE"),
    asset!(
        "vendor/addon-fit.js",
        "node_modules/@xterm/addon-fit/lib/addon-fit.js"
    ),
    asset!(
        "vendor/LICENSE.addon-fit",
        "node_modules/@xterm/addon-fit/LICENSE"
    ),
    asset!(
        "vendor/browser_wasi_shim/index.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/index.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/wasi.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/wasi.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/wasi_defs.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/wasi_defs.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/fd.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/fd.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/fs_mem.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/fs_mem.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/fs_opfs.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/fs_opfs.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/strace.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/strace.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/debug.js",
        "node_modules/@bjorn3/browser_wasi_shim/dist/debug.js"
    ),
    asset!(
        "vendor/browser_wasi_shim/LICENSE-MIT",
        "node_modules/@bjorn3/browser_wasi_shim/LICENSE-MIT"
    ),
    asset!(
        "vendor/browser_wasi_shim/LICENSE-APACHE",
        "node_modules/@bjorn3/browser_wasi_shim/LICENSE-APACHE"
    ),
];

/// The module's name in a site.
pub const MODULE_NAME: &str = "module.wasm";

/// What the page runs: `rvbox.json` in the site.
pub struct SiteConfig {
    pub title: String,
    /// The command and its arguments (empty: the image's).
    pub args: Vec<String>,
    /// The module's environment (the container's variables and `RVBOX_*` knobs).
    pub env: Vec<(String, String)>,
}

/// Writes a site for `module` into `out` (created if missing; files of earlier sites
/// are replaced). Returns the site's size in bytes.
pub fn write_site(module: &Path, out: &Path, config: &SiteConfig) -> anyhow::Result<u64> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut size = 0;
    for (name, bytes) in ASSETS {
        let p = out.join(name);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        size += bytes.len() as u64;
    }
    let mut env = serde_json::Map::new();
    for (k, v) in &config.env {
        env.insert(k.clone(), v.clone().into()); // a later value wins, as in the environment
    }
    let json = serde_json::json!({
        "title": config.title,
        "module": MODULE_NAME,
        "args": config.args,
        "env": env,
    });
    let text = serde_json::to_string_pretty(&json)? + "\n";
    let p = out.join("rvbox.json");
    std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
    size += text.len() as u64;
    // The module last, through a temporary name: a site is never left with half a module.
    let dest = out.join(MODULE_NAME);
    let tmp = out.join(format!(".{MODULE_NAME}.tmp"));
    size += std::fs::copy(module, &tmp)
        .with_context(|| format!("copying {} to {}", module.display(), tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
    Ok(size)
}

/// The media type for a file name.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under `root` a request target names: percent-decoded, query dropped, `/` is
/// `index.html`; `None` for what could leave the root (`..`, a NUL, a backslash).
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    if !path.starts_with('/') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut raw = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            raw.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            raw.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(raw).ok()?;
    let mut out = root.to_path_buf();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.contains(['\0', '\\']) => return None,
            c => out.push(c),
        }
    }
    if path.ends_with('/') || out == root {
        out.push("index.html");
    }
    Some(out)
}

/// Serves the files under `root` on `listener` until the process ends.
pub fn serve(root: &Path, listener: TcpListener) -> anyhow::Result<()> {
    let root = root
        .canonicalize()
        .with_context(|| format!("{}", root.display()))?;
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = handle(&root, conn);
        });
    }
    Ok(())
}

/// Answers the requests of one connection (keep-alive), GET and HEAD only.
fn handle(root: &Path, conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut close = parts.next() != Some("HTTP/1.1");
        // The headers: only Connection matters; a body is refused below.
        let mut has_body = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_ascii_lowercase();
            if name == "connection" {
                close = value == "close";
            } else if name == "content-length" && value != "0" || name == "transfer-encoding" {
                has_body = true;
            }
        }
        if has_body || (method != "GET" && method != "HEAD") {
            respond(
                &mut out,
                405,
                "Method Not Allowed",
                "text/plain",
                None,
                b"GET and HEAD only\n",
                true,
            )?;
            return Ok(());
        }
        let file = resolve(root, target)
            .and_then(|p| std::fs::File::open(&p).ok().map(|f| (p, f)))
            .filter(|(_, f)| f.metadata().is_ok_and(|m| m.is_file()));
        match file {
            Some((path, f)) => {
                let len = f.metadata()?.len();
                respond(
                    &mut out,
                    200,
                    "OK",
                    content_type(&path),
                    Some(len),
                    b"",
                    false,
                )?;
                if method == "GET" {
                    std::io::copy(&mut f.take(len), &mut out)?;
                }
            }
            None => respond(
                &mut out,
                404,
                "Not Found",
                "text/plain",
                None,
                b"not found\n",
                false,
            )?,
        }
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// Writes a response head (and a small body) with the isolation headers.
fn respond(
    out: &mut TcpStream,
    code: u16,
    reason: &str,
    ctype: &str,
    len: Option<u64>,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let len = len.unwrap_or(body.len() as u64);
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\n\
         Content-Type: {ctype}\r\n\
         Content-Length: {len}\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\n\
         Cross-Origin-Embedder-Policy: require-corp\r\n\
         Cross-Origin-Resource-Policy: same-origin\r\n\
         Cache-Control: no-cache\r\n\
         {}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets_stay_under_the_root() {
        let root = Path::new("/site");
        let r = |t: &str| resolve(root, t);
        assert_eq!(r("/"), Some(PathBuf::from("/site/index.html")));
        assert_eq!(r("/?x=1"), Some(PathBuf::from("/site/index.html")));
        assert_eq!(r("/main.js"), Some(PathBuf::from("/site/main.js")));
        assert_eq!(
            r("/vendor/a%20b.js#f"),
            Some(PathBuf::from("/site/vendor/a b.js"))
        );
        assert_eq!(r("/sub/"), Some(PathBuf::from("/site/sub/index.html")));
        assert_eq!(r("/../etc/passwd"), None);
        assert_eq!(r("/a/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(r("/a%5c..%5cb"), None);
        assert_eq!(r("/a%00"), None);
        assert_eq!(r("/%zz"), None);
        assert_eq!(r("http://x/"), None);
    }

    /// Starts a server on a free port; a raw HTTP exchange; the isolation headers.
    #[test]
    fn serves_files_with_the_isolation_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"\0asm").unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || serve(&root, l));
        let get = |req: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            String::from_utf8_lossy(&v).into_owned()
        };
        let r = get("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Cross-Origin-Opener-Policy: same-origin\r\n"));
        assert!(r.contains("Cross-Origin-Embedder-Policy: require-corp\r\n"));
        assert!(r.contains("Content-Type: text/html"));
        assert!(r.ends_with("\r\n\r\n<p>hi</p>"), "{r}");
        let r = get("GET /m.wasm HTTP/1.0\r\n\r\n");
        assert!(
            r.contains("Content-Type: application/wasm\r\nContent-Length: 4\r\n"),
            "{r}"
        );
        let r = get("HEAD /m.wasm HTTP/1.0\r\n\r\n");
        assert!(r.ends_with("\r\n\r\n"), "{r}");
        let r = get("GET /../x HTTP/1.0\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = get("POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx");
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        // Two requests on one connection.
        let r = get("GET /m.wasm HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "{r}");
    }
}
