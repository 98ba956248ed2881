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
    assert_eq!(r.status, 125);
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
    assert_eq!(r.status, 125);
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
    assert_eq!(r.status, 125);
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
    assert_eq!(r.status, 125);
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

/// A converted reference that must fail: status 125, one `rvbox:` line containing `want`, no
/// output and nothing left in the output's directory.
fn refused(reference: &str, want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    let r = convert(reference, &out);
    let err = r.stderr_str();
    assert_eq!(r.status, 125, "{reference}: {err}");
    assert_eq!(err.lines().count(), 1, "{reference}: {err}");
    assert!(err.starts_with("rvbox: "), "{err}");
    assert!(err.contains(want), "{reference}: want {want:?} in: {err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "{reference}: leftovers"
    );
}

#[test]
fn damaged_and_wrong_archives_are_refused_with_a_clear_error() {
    let images = images();
    let forms = images.join("layers.forms");
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // Archives cut short: in a blob, and before the blobs.
    for (name, len) in [("oci.tar", 0.6), ("docker.tar", 0.6), ("oci.tar", 0.001)] {
        let data = std::fs::read(forms.join(name)).unwrap();
        let cut = (data.len() as f64 * len) as usize;
        let file = p(&format!("cut-{len}-{name}"));
        std::fs::write(&file, &data[..cut]).unwrap();
        let kind = if name == "oci.tar" {
            "oci-archive"
        } else {
            "docker-archive"
        };
        let r = convert(&format!("{kind}:{file}"), &dir.path().join("x.wasm"));
        assert_eq!(r.status, 125, "{file}: {}", r.stderr_str());
        assert_eq!(r.stderr_str().lines().count(), 1, "{}", r.stderr_str());
        assert!(!dir.path().join("x.wasm").exists());
    }
    // A layer blob changed inside an archive (same size): the digest check names it.
    let mut data = std::fs::read(forms.join("oci.tar")).unwrap();
    let n = data.len();
    data[n / 2] ^= 0x40;
    std::fs::write(p("tampered.tar"), &data).unwrap();
    let r = convert(
        &format!("oci-archive:{}", p("tampered.tar")),
        &dir.path().join("x.wasm"),
    );
    assert_eq!(r.status, 125);
    let err = r.stderr_str();
    assert!(
        err.contains("does not match its digest") || err.contains("layer"),
        "{err}"
    );
    // The wrong transport, a missing file, not a tar, a missing tag.
    refused(
        &format!("docker-archive:{}", forms.join("oci.tar").display()),
        "use oci-archive:FILE",
    );
    refused(
        &format!("oci-archive:{}", forms.join("docker.tar").display()),
        "use docker-archive:FILE",
    );
    refused(&format!("oci-archive:{}", p("missing.tar")), "no such file");
    std::fs::write(p("text.tar"), "not a tar archive\n".repeat(100)).unwrap();
    refused(&format!("oci-archive:{}", p("text.tar")), "text.tar");
    refused(
        &format!(
            "docker-archive:{}:nosuch:tag",
            forms.join("docker.tar").display()
        ),
        "no image tagged \"nosuch:tag\" here; tags here: docker.io/rvbox/layers:latest",
    );
    refused(
        &format!("oci-archive:{}:v9", forms.join("oci.tar").display()),
        "no image tagged \"v9\"",
    );
    // A root filesystem of amd64 programs.
    let amd = dir.path().join("amd64root");
    std::fs::create_dir_all(amd.join("bin")).unwrap();
    std::fs::copy("/bin/true", amd.join("bin/true")).unwrap();
    refused(
        &format!("dir:{}", amd.display()),
        "no linux/riscv64 image here; it has linux/amd64 (1 ELF files)",
    );
    // A directory that is a root filesystem, given as a layout: the error says dir:.
    refused(
        images.join("layers.rootfs").to_str().unwrap(),
        "it looks like a root filesystem: use dir:",
    );
    // A decompression bomb stops at --max-image-size.
    let r = rvbox(
        &[
            "convert",
            images.join("layers").to_str().unwrap(),
            "-o",
            &p("x.wasm"),
            "--max-image-size",
            "1m",
        ],
        b"",
    );
    assert_eq!(r.status, 125);
    assert!(
        r.stderr_str()
            .contains("larger than the limit of 1048576 bytes")
            && r.stderr_str().contains("--max-image-size"),
        "{}",
        r.stderr_str()
    );
}

#[test]
fn hostile_layers_write_nothing_on_the_host() {
    // An image whose layer aims at host paths: `..`, absolute names, a symlinked parent
    // pointing out, a hardlink out. The conversion keeps all of it inside the image.
    let tag = format!("rvbox-escape-{}", std::process::id());
    let victim = std::env::temp_dir().join(&tag);
    let _ = std::fs::remove_file(&victim);
    let work = tempfile::tempdir().unwrap();
    let layer = work.path().join("layer.tar");
    let script = format!(
        r#"
import tarfile, io, sys
t = tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT)
def f(name, data=b"pwned", mode=0o644):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; t.addfile(ti, io.BytesIO(data))
def l(name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = target; t.addfile(ti)
f("../../../../../../../..{tmp}/{tag}")
f("{tmp}/{tag}-abs")
l("out", "../../../../../../../..{tmp}")
f("out/{tag}-via-symlink")
l("abs", "{tmp}")
f("abs/{tag}-via-abs")
f("bin/busybox", open("{busybox}", "rb").read(), 0o755)
t.close()
"#,
        tmp = std::env::temp_dir().display(),
        busybox = images().join("busybox.rootfs/usr/bin/busybox").display(),
    );
    let st = std::process::Command::new("python3")
        .args(["-c", &script, layer.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    // Into an OCI layout with umoci, then converted.
    let layout = work.path().join("layout");
    let sh = format!(
        "umoci init --layout {l} && umoci new --image {l}:latest && \
         umoci raw add-layer --image {l}:latest {layer} && \
         umoci config --image {l}:latest --os linux --architecture riscv64 \
           --config.entrypoint /bin/busybox",
        l = layout.display(),
        layer = layer.display()
    );
    let st = std::process::Command::new("sh")
        .args(["-c", &sh])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = work.path().join("escape.wasm");
    let r = convert(layout.to_str().unwrap(), &out);
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    let tmp = std::env::temp_dir();
    for suffix in ["", "-abs", "-via-symlink", "-via-abs"] {
        assert!(
            !tmp.join(format!("{tag}{suffix}")).exists(),
            "{tag}{suffix} escaped to the host"
        );
    }
    // Inside the image they are where Linux would put them in the container's root.
    let r = rvbox_run(
        &out,
        &[
            "sh",
            "-c",
            &format!("ls {0}/ | grep -c {tag}", tmp.display()),
        ],
        b"",
    );
    assert_eq!(r.stdout_str(), "4\n", "{}", r.stderr_str());
}

/// `rvbox ARGS...` with stdout a pipe of one page, closed by the reader after `lines`
/// lines (0: before rvbox starts, so its first write finds no reader); returns the
/// status, the lines read and stderr.
fn with_stdout_closed(args: &[&str], lines: usize) -> (i32, String, String) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (mut reader, writer) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a pipe descriptor this function owns; a page is the smallest size,
    // so the reports below do not fit in the pipe and rvbox writes after the close.
    let r = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        r >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let mut cmd = std::process::Command::new(rvbox_bin());
    cmd.args(args)
        .env("RVBOX_CACHE_DIR", scratch().join("cache"))
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let mut read = Vec::new();
    if lines == 0 {
        drop(reader);
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        return (out.status.code().unwrap_or(-1), String::new(), err);
    }
    let child = cmd.spawn().unwrap();
    drop(cmd); // our copy of the pipe's write end
    let mut byte = [0u8];
    while read.iter().filter(|&&b| b == b'\n').count() < lines {
        assert_eq!(
            reader.read(&mut byte).unwrap(),
            1,
            "{args:?}: output ended early"
        );
        read.push(byte[0]);
    }
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let read = String::from_utf8(read).unwrap();
    (out.status.code().unwrap_or(-1), read, err)
}

/// The probe's finding: `rvbox syscalls | head -1` and `rvbox inspect M | head -1`
/// panicked (status 101) on the broken pipe. A closed stdout is no error: rvbox stops
/// writing and exits 0, quietly.
#[test]
fn a_closed_stdout_is_not_an_error() {
    let m = module("busybox");
    let m = m.to_str().unwrap();
    for (args, lines, first) in [
        (&["syscalls"][..], 1, "   "),
        (&["syscalls"][..], 0, ""),
        (&["inspect", m][..], 0, ""),
        (&["inspect", "--json", m][..], 0, ""),
        (&["inspect", "--files", m][..], 1, "d0755     0:0 "),
        (
            &["inspect", "--files", "--json", m][..],
            2,
            "{\"path\":\"/\"",
        ),
    ] {
        let (status, read, err) = with_stdout_closed(args, lines);
        assert_eq!(
            (status, err.as_str()),
            (0, ""),
            "{args:?} after {lines} lines"
        );
        assert!(read.starts_with(first), "{args:?}: {read:?}");
    }
}

/// A closed stderr (its reader gone): rvbox's messages are lost, its exit statuses are
/// not (`rvbox convert` of a missing image panicked with 101 writing its error).
#[test]
fn a_closed_stderr_keeps_the_exit_status() {
    let m = module("busybox");
    let m = m.to_str().unwrap();
    let out = scratch().join("closed-stderr.wasm");
    let out = out.to_str().unwrap();
    let site = fresh_dir("closed-stderr-site");
    let site = site.join("s");
    let busybox = images().join("busybox");
    for (args, want) in [
        (&["convert", "/nonexistent-image", "-o", out][..], 125),
        (&["convert", busybox.to_str().unwrap(), "-o", out][..], 0),
        (&["web", m, "-o", site.to_str().unwrap()][..], 0),
        (&["run", "/nonexistent.wasm"][..], 125),
        (&["run", m, "--", "sh", "-c", "exit 3"][..], 3),
        (&["no-such-command"][..], 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = std::process::Command::new(rvbox_bin())
            .args(args)
            .env("RVBOX_CACHE_DIR", scratch().join("cache"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(want), "{args:?}");
    }
}

/// The probe's finding: `rvbox inspect` of a truncated module gave a full report and 0.
/// Every command that reads a module file refuses one cut short, in one line, with 125.
#[test]
fn truncated_modules_are_refused_by_inspect_and_web() {
    let good = std::fs::read(module("busybox")).unwrap();
    let dir = fresh_dir("truncated-inspect");
    for len in [good.len() - 1, good.len() * 2 / 3, 200] {
        let cut = dir.join(format!("cut-{len}.wasm"));
        std::fs::write(&cut, &good[..len]).unwrap();
        let cut = cut.to_str().unwrap();
        let site = dir.join("site");
        for args in [
            &["inspect", cut][..],
            &["inspect", "--json", cut][..],
            &["inspect", "--files", cut][..],
            &["web", cut, "-o", site.to_str().unwrap()][..],
        ] {
            let r = rvbox(args, b"");
            let err = r.stderr_str();
            assert_eq!(r.status, 125, "{args:?}: {err}");
            assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout_str());
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.starts_with(&format!("rvbox: {cut}: ")) && err.contains("cut short"),
                "{args:?}: {err}"
            );
            assert!(!site.exists());
        }
    }
    // The whole module is fine.
    std::fs::write(dir.join("whole.wasm"), &good).unwrap();
    let r = rvbox(&["inspect", dir.join("whole.wasm").to_str().unwrap()], b"");
    assert_eq!(r.status, 0, "{}", r.stderr_str());
}

/// The probe's finding: `rvbox convert IMG -o DIR/` said "Not a directory". An output
/// that names a directory, or a file in a directory that is not there, is refused before
/// any work with a line naming it, and nothing is written.
#[test]
fn convert_refuses_an_output_that_is_a_directory() {
    let image = images().join("busybox");
    let image = image.to_str().unwrap();
    let dir = fresh_dir("convert-to-dir");
    let existing = dir.join("existing");
    std::fs::create_dir(&existing).unwrap();
    let e = existing.display();
    for (out, want) in [
        (format!("{e}/"), format!("rvbox: {e}/: is a directory; give the module's file name, as -o {e}/NAME.wasm")),
        (format!("{e}"), format!("rvbox: {e}: is a directory; give the module's file name, as -o {e}/NAME.wasm")),
        (format!("{e}/new/"), format!("rvbox: {e}/new/: is a directory; give the module's file name, as -o {e}/new/NAME.wasm")),
        (format!("{e}/missing/x.wasm"), format!("rvbox: {e}/missing/x.wasm: no such directory: {e}/missing")),
    ] {
        let r = rvbox(&["convert", image, "-o", &out], b"");
        assert_eq!(r.status, 125, "{out}: {}", r.stderr_str());
        assert_eq!(r.stderr_str(), format!("{want}\n"));
        assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 0, "{out}: written");
    }
}

/// One scheme of exit statuses in every subcommand (README, "Exit status"): 125 when
/// rvbox fails, 2 when a subcommand other than `run` is misused, 125 when `run` is (its
/// other statuses are the container's).
#[test]
fn exit_statuses_follow_one_scheme() {
    let m = module("busybox");
    let m = m.to_str().unwrap();
    let missing = scratch().join("no-such-module.wasm");
    let missing = missing.to_str().unwrap();
    let out = scratch().join("exit-status.wasm");
    let out = out.to_str().unwrap();
    // (arguments, status, whether rvbox says why: the container's own statuses are quiet)
    for (args, status, says) in [
        (&["inspect", missing][..], 125, true),
        (&["inspect", "--files", missing][..], 125, true),
        (&["web", missing, "-o", out][..], 125, true),
        (&["run", missing][..], 125, true),
        (&["convert", missing, "-o", out][..], 125, true),
        (&["inspect", "--bogus", m][..], 2, true),
        (&["convert"][..], 2, true),
        (&["no-such-subcommand"][..], 2, true),
        (&["run", "--bogus", m][..], 125, true),
        (&["run", m, "--", "sh", "-c", "exit 2"][..], 2, false),
        (&["run", m, "--", "sh", "-c", "exit 125"][..], 125, false),
        (&["--version"][..], 0, false),
    ] {
        let r = rvbox(args, b"");
        let err = r.stderr_str();
        assert_eq!(r.status, status, "{args:?}: {err}");
        assert_eq!(err.starts_with("rvbox: "), says, "{args:?}: {err}");
    }
    assert!(!std::path::Path::new(out).exists());
}
