//! Checks that the npm packages the browser site embeds are installed (`rvbox web` copies
//! them into every site it writes: `runner/src/web.rs`, `ASSETS`).

use std::path::Path;

/// Files of `runner/web/node_modules` that `web.rs` embeds; keep in step with `ASSETS`.
const NPM_FILES: &[&str] = &[
    "@xterm/xterm/lib/xterm.js",
    "@xterm/xterm/css/xterm.css",
    "@xterm/xterm/LICENSE",
    "@xterm/addon-fit/lib/addon-fit.js",
    "@bjorn3/browser_wasi_shim/dist/index.js",
    "@bjorn3/browser_wasi_shim/LICENSE-MIT",
];

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    for f in NPM_FILES {
        let p = web.join("node_modules").join(f);
        println!("cargo:rerun-if-changed={}", p.display());
        if !p.exists() {
            panic!(
                "{} is missing: the browser site of `rvbox web` embeds the npm packages of \
                 runner/web. Install them with `npm ci` in runner/web (.ci/setup does).",
                p.display()
            );
        }
    }
}
