//! Builds the guest emulator for wasm32-wasip1 and hands its path to the converter, which
//! embeds it (`include_bytes!`). This is why `cargo build` is all a user runs.
//!
//! The nested cargo uses its own target directory under OUT_DIR, so it never waits on the
//! lock of the outer build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let guest_dir = manifest_dir.join("../emulator-guest");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", guest_dir.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guest_dir.join("Cargo.toml").display()
    );
    println!("cargo:rerun-if-env-changed=RVBOX_GUEST_WASM");

    let dest = out_dir.join("rvbox-guest.wasm");
    // A prebuilt guest can be supplied (e.g. by a packager); otherwise build it.
    if let Ok(prebuilt) = env::var("RVBOX_GUEST_WASM") {
        std::fs::copy(&prebuilt, &dest).expect("copy RVBOX_GUEST_WASM");
        return;
    }
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(guest_dir.join("Cargo.toml"))
        .args([
            "--bin",
            "rvbox-guest",
            "--target",
            "wasm32-wasip1",
            "--profile",
            "guest",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // Don't let the outer build's settings leak into the guest build.
    for (k, _) in env::vars() {
        if k.starts_with("CARGO_")
            && !matches!(
                k.as_str(),
                "CARGO_HOME" | "CARGO_NET_OFFLINE" | "CARGO_REGISTRIES_CRATES_IO_PROTOCOL"
            )
        {
            cmd.env_remove(&k);
        }
    }
    for k in ["RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER"] {
        cmd.env_remove(k);
    }
    let status = cmd.status().expect("run cargo to build the guest");
    assert!(status.success(), "building the wasm32-wasip1 guest failed (is the wasm32-wasip1 target installed? rust-toolchain.toml lists it)");
    let built: &Path = &target_dir.join("wasm32-wasip1/guest/rvbox-guest.wasm");
    std::fs::copy(built, &dest).expect("copy the built guest");
}
