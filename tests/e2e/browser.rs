//! The browser: `rvbox web` writes a site for a module, `rvbox serve` serves it, and
//! headless Chromium opens it as a user would (playwright-core from runner/web's npm
//! packages, driven by `browser.mjs`): waits for the shell's prompt, types commands and
//! reads the terminal, resizes the window (the guest's `stty size` follows, and the shell
//! gets SIGWINCH), drops a file on the page and reads it under /mnt, and saves a
//! screenshot. Chromium is required: without it these tests fail, saying so.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::support::{fresh_dir, module, repo, rvbox_bin};

/// Chromium: `RVBOX_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    let p = std::env::var_os("RVBOX_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "{} not found: the browser tests need Chromium (apt-get install chromium; .ci/setup \
         does), or RVBOX_CHROMIUM=/path/to/chrome",
        p.display()
    );
    p
}

/// `rvbox web MODULE -o SITE ARGS...`; returns the site.
fn web(name: &str, module: &Path, args: &[&str]) -> PathBuf {
    let site = fresh_dir(name);
    let o = Command::new(rvbox_bin())
        .arg("web")
        .arg(module)
        .arg("-o")
        .arg(&site)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "rvbox web: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "index.html",
        "main.js",
        "worker.js",
        "sw.js",
        "rvbox.json",
        "module.wasm",
    ] {
        assert!(site.join(f).is_file(), "the site has no {f}");
    }
    site
}

/// `rvbox serve SITE --port 0`, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(site: &Path) -> Server {
        let mut child = Command::new(rvbox_bin())
            .arg("serve")
            .arg(site)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "serving SITE at http://127.0.0.1:PORT/ (^C to stop)"
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("rvbox serve said {line:?}"))
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `steps` (see browser.mjs) on the page at `url`; the result, which must be ok.
fn drive(name: &str, url: &str, steps: Value, screenshot: &Path) -> Value {
    drive_with(name, url, steps, screenshot, false)
}

fn drive_with(
    name: &str,
    url: &str,
    steps: Value,
    screenshot: &Path,
    block_service_workers: bool,
) -> Value {
    let dir = fresh_dir(&format!("{name}-browser"));
    let spec = json!({
        "url": url,
        "chromium": chromium(),
        "userDataDir": dir.join("profile"),
        "screenshot": screenshot,
        "steps": steps,
        "blockServiceWorkers": block_service_workers,
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let o = Command::new("node")
        .arg(repo().join("tests/e2e/browser.mjs"))
        .arg(&spec_path)
        .output()
        .unwrap();
    let out: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "browser.mjs printed no result ({e}); status {}, stderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        out["ok"] == true,
        "in the browser: {}\nconsole: {}",
        out["error"].as_str().unwrap_or("?"),
        out["console"]
    );
    out
}

/// The text a wait step matched on (the terminal's text then).
fn text(out: &Value, step: usize) -> &str {
    out["steps"][step]["text"].as_str().unwrap()
}

fn size(out: &Value, step: usize) -> (u64, u64) {
    let s = &out["steps"][step];
    (s["rows"].as_u64().unwrap(), s["cols"].as_u64().unwrap())
}

/// A PNG of the expected size, with something drawn in it (not one colour).
fn assert_screenshot(path: &Path, width: u32, height: u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (width, height));
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let most = counts.values().max().copied().unwrap_or(0);
    let others = pixels.len() - most;
    assert!(
        counts.len() >= 8 && others >= 2000,
        "the screenshot looks blank: {} colours, {others} pixels not of the main colour",
        counts.len()
    );
}

/// Report figures (the session notes want them): page load to the first prompt.
fn report(name: &str, out: &Value, site: &Path) {
    let size: u64 = walk(site).iter().map(|p| p.metadata().unwrap().len()).sum();
    let module = site.join("module.wasm").metadata().unwrap().len();
    eprintln!(
        "browser {name}: first prompt {:.0} ms after navigation (page timings {}), site {:.1} \
         MiB (module {:.1} MiB)",
        out["steps"][0]["pageMs"].as_f64().unwrap_or(f64::NAN),
        out["timings"],
        size as f64 / 1048576.0,
        module as f64 / 1048576.0
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// busybox's shell in a tab: commands, the terminal's size and its changes (SIGWINCH),
/// a dropped file, a screenshot.
#[test]
fn busybox_shell_in_a_browser_tab() {
    let site = web("web-busybox", &module("busybox"), &[]);
    let server = Server::start(&site);
    let shot = site.with_extension("png");
    let steps = json!([
        {"wait": "/ # $", "timeout": 120000},
        {"type": "echo hi; uname -m\r", "wait": "\\nhi\\s*\\nriscv64\\s*\\n/ # $"},
        // The size the page gave at start (LINES/COLUMNS).
        {"type": "stty size\r", "wait": "\\n${rows} ${cols}\\s*\\n/ # $"},
        // A smaller window: the terminal follows, the guest hears of it in band, and the
        // foreground job gets SIGWINCH (a shell that waits for it: the interactive ash's
        // own trap would not do, as its line editor takes SIGWINCH while it reads).
        {"type": "sh -c 'trap \"echo got-WINCH; exit 0\" WINCH; echo waiting; while :; do sleep 0.1; done'\r",
         "wait": "\\nwaiting\\s*$"},
        {"resize": [640, 360]},
        {"wait": "\\ngot-WINCH\\s*\\n/ # $"},
        {"type": "stty size\r", "wait": "\\n${rows} ${cols}\\s*\\n/ # $"},
        // /mnt is there and empty; a file dropped now is seen by the next lookup.
        {"type": "ls -a /mnt | wc -l\r", "wait": "\\n2\\s*\\n/ # $"},
        {"drop": {"name": "note.txt", "text": "dropped while running\n"}},
        {"type": "cat /mnt/note.txt; ls -l /mnt\r", "wait": "\\ndropped while running\\s*\\n(.|\\n)*note\\.txt\\s*\\n/ # $"},
        {"type": "exit 3\r", "wait": "exited with status 3"},
    ]);
    let out = drive("busybox", &server.url, steps, &shot);
    let t = text(&out, 1);
    assert!(t.contains("\nhi\n") && t.contains("\nriscv64\n"), "{t}");
    let before = size(&out, 2);
    let after = size(&out, 6);
    assert!(
        after.0 < before.0 && after.1 < before.1,
        "the terminal did not shrink: {before:?} -> {after:?}"
    );
    let t = text(&out, 6);
    assert!(t.contains(&format!("\n{} {}\n", after.0, after.1)), "{t}");
    // One link, the size, and the time the file was made in the page (not 1970).
    let t = text(&out, 9);
    assert!(
        t.contains("-rw-r--r--    1 root     root            22 ") && !t.contains(" 1970 "),
        "{t}"
    );
    assert_screenshot(&shot, 640, 360);
    report("busybox", &out, &site);
}

/// The Debian image's python3 in a tab; `rvbox web`'s command and environment options.
#[test]
fn python_in_a_browser_tab() {
    let site = web(
        "web-debian",
        &module("debian"),
        &["-e", "PS1=web$ ", "--", "bash", "--norc", "--noprofile"],
    );
    let server = Server::start(&site);
    let shot = site.with_extension("png");
    let steps = json!([
        {"wait": "web\\$ $", "timeout": 300000},
        {"type": "python3 -c \"print(6*7)\"\r", "wait": "\\n42\\s*\\nweb\\$ $", "timeout": 120000},
    ]);
    let out = drive("debian", &server.url, steps, &shot);
    assert!(text(&out, 1).contains("\n42\n"), "{}", text(&out, 1));
    assert_screenshot(&shot, 1000, 600);
    report("debian (python3)", &out, &site);
}

/// A static host that sends no isolation headers (Python's http.server): the site's
/// service worker adds them after one reload; without service workers, the page says
/// what is missing.
#[test]
fn static_host_without_headers() {
    let site = web("web-static", &module("busybox"), &[]);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "-d"])
        .arg(&site)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let url = format!("http://127.0.0.1:{port}/");
    // Wait for it to listen.
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 30, "http.server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let shot = site.with_extension("png");
    let r = std::panic::catch_unwind(|| {
        let steps = json!([
            {"wait": "/ # $", "timeout": 120000},
            {"type": "echo isolated\r", "wait": "\\nisolated\\s*\\n/ # $"},
        ]);
        drive("static", &url, steps, &shot);
        let steps = json!([{"error": "needs SharedArrayBuffer.*Cross-Origin-Opener-Policy"}]);
        drive_with("static-no-sw", &url, steps, &shot, true);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

/// `rvbox web` writes nothing for a file that is no rvbox module; `rvbox serve` refuses a
/// directory that is no site.
#[test]
fn web_and_serve_refuse_wrong_input() {
    let dir = fresh_dir("web-wrong");
    let bad = dir.join("plain.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let site = dir.join("site");
    let o = Command::new(rvbox_bin())
        .arg("web")
        .arg(&bad)
        .arg("-o")
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.starts_with("rvbox: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        !site.exists(),
        "a site was written for a module that is none"
    );
    let o = Command::new(rvbox_bin())
        .arg("serve")
        .arg(&dir)
        .args(["--port", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("no index.html"), "{err}");
}

/// A site whose module.wasm is bad (cut short or damaged after `rvbox web` wrote it, as a
/// partial upload would leave it, or from another rvbox version): the page shows one clear
/// error, never a hang, a blank terminal or a plain "exited".
#[test]
fn a_bad_module_is_an_error_on_the_page() {
    let good = std::fs::read(module("busybox")).unwrap();
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "truncated",
            good[..good.len() * 2 / 3].to_vec(),
            "Error: module.wasm \\(\\d+ bytes\\) is not a whole WebAssembly module, cut short",
        ),
        (
            "format",
            edit(&|b| {
                let at = crate::damage::find(b, b"\"format\":1");
                b[at + 9] = b'9';
            }),
            "Error: module.wasm: made by an incompatible rvbox \\(module format 9",
        ),
        (
            "tables",
            edit(&|b| {
                let at = crate::damage::find(b, b"RVBXBNDL");
                b[at + 96 + 17] ^= 0x04;
            }),
            "Error: damaged module: .*tables do not match their checksum",
        ),
        (
            "file",
            edit(&|b| {
                let at = crate::damage::find(b, b"daemon:*:10933:0:99999");
                b[at] = b'D';
            }),
            "Error: damaged module: .*checksum",
        ),
    ];
    for (name, bytes, want) in cases {
        let site = web(
            &format!("web-bad-{name}"),
            &module("busybox"),
            &["--", "cat", "/etc/shadow"],
        );
        std::fs::write(site.join("module.wasm"), &bytes).unwrap();
        let server = Server::start(&site);
        let shot = site.with_extension("png");
        let steps = json!([{"error": want, "timeout": 120000}]);
        let out = drive(&format!("bad-{name}"), &server.url, steps, &shot);
        let shown = out["steps"][0]["text"].as_str().unwrap();
        assert_eq!(shown.lines().count(), 1, "{name}: {shown}");
    }
}
