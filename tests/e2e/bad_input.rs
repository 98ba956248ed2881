//! Bad input gets a clear one-line error, a non-zero status, and no output file.

use crate::support::*;

fn convert(image: &str, out: &std::path::Path) -> Run {
    rvbox(&["convert", image, "-o", out.to_str().unwrap()], b"")
}

#[test]
fn not_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let r = convert(dir.path().join("empty").to_str().unwrap(), &out);
    assert!(r.status == 1 || r.status == 2, "status {}", r.status);
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing left behind"
    );

    let r = convert(dir.path().join("missing").to_str().unwrap(), &out);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr_str().contains("no such directory"),
        "{}",
        r.stderr_str()
    );
    assert!(!out.exists());
}

#[test]
fn image_without_riscv64_lists_its_platforms() {
    let images = images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    let r = convert(images.join("busybox-amd64").to_str().unwrap(), &out);
    assert_eq!(r.status, 1);
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no linux/riscv64 image here; it has linux/amd64"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp file left"
    );
}

#[test]
fn multi_platform_index_picks_riscv64() {
    let images = images();
    let out = scratch().join("multi.wasm");
    for reference in [
        format!("oci:{}", images.join("busybox-multi").display()),
        format!("oci:{}:latest", images.join("busybox-multi").display()),
    ] {
        let r = convert(&reference, &out);
        assert_eq!(r.status, 0, "{}", r.stderr_str());
        let info = rvbox(&["inspect", "--json", out.to_str().unwrap()], b"");
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(v["image"]["platform"], "linux/riscv64");
        assert_eq!(
            rvbox_run(&out, &["echo", "multi"], b"").stdout_str(),
            "multi\n"
        );
    }
}

#[test]
fn inspect_shows_what_is_inside() {
    let m = module("busybox");
    let r = rvbox(&["inspect", m.to_str().unwrap()], b"");
    assert_eq!(r.status, 0);
    let s = r.stdout_str();
    for want in [
        "platform:    linux/riscv64",
        "digest:      sha256:",
        "cmd:         [\"sh\"]",
        "files:       ",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    let v: serde_json::Value =
        serde_json::from_slice(&rvbox(&["inspect", "--json", m.to_str().unwrap()], b"").stdout)
            .unwrap();
    assert!(v["file_count"].as_u64().unwrap() > 250);
    assert!(v["module_size"].as_u64().unwrap() > v["bundle_size"].as_u64().unwrap());
}

#[test]
fn not_an_rvbox_module() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.wasm");
    std::fs::write(&plain, b"\0asm\x01\0\0\0").unwrap();
    let r = rvbox(&["run", plain.to_str().unwrap(), "--", "true"], b"");
    assert_eq!(r.status, 125);
    assert!(
        r.stderr_str().contains("not an rvbox module"),
        "{}",
        r.stderr_str()
    );
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, b"hello").unwrap();
    let r = rvbox(&["inspect", text.to_str().unwrap()], b"");
    assert_eq!(r.status, 1);
    assert!(
        r.stderr_str().contains("not a WebAssembly module"),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn unknown_command_is_127() {
    let m = module("busybox");
    let r = rvbox_run(&m, &["no-such-program"], b"");
    assert_eq!(r.status, 127);
    assert_eq!(
        r.stderr_str(),
        "rvbox: no-such-program: executable file not found in $PATH\n"
    );
}
