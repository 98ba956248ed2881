//! Every way users hold an image converts to the same tree, and that tree is exactly what
//! `umoci unpack` makes of the image (`images/out/layers.rootfs`, the oracle built with the
//! image): paths, types, modes with setuid/setgid/sticky, owners, sizes, mtimes, symlink
//! targets, device numbers, content hashes and hardlink groups.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::Digest;

use crate::support::*;

/// One entry as both sides describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, u32),
    nlink: Option<u32>,
    target: Option<String>,
    sha256: Option<String>,
    rdev: Option<(u32, u32)>,
}

/// The tree on the host at `root` (the oracle), keyed by guest path; plus hardlink groups.
fn host_tree(root: &Path) -> (BTreeMap<String, Rec>, Vec<Vec<String>>) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_string())];
    while let Some((path, guest)) = stack.pop() {
        let md = std::fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let rdev = md.rdev();
        let dev = (
            (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32,
            (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32,
        );
        let rec = Rec {
            kind: kind.into(),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            size: if kind == "file" { md.len() } else { 0 },
            mtime: (md.mtime(), md.mtime_nsec() as u32),
            nlink: (kind != "dir").then_some(md.nlink() as u32),
            target: (kind == "symlink").then(|| {
                std::fs::read_link(&path)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            }),
            sha256: (kind == "file")
                .then(|| hex(&sha2::Sha256::digest(std::fs::read(&path).unwrap()))),
            rdev: matches!(kind, "char" | "block").then_some(dev),
        };
        if kind == "file" && md.nlink() > 1 {
            inodes.entry(md.ino()).or_default().push(guest.clone());
        }
        if kind == "dir" {
            for e in std::fs::read_dir(&path).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if guest == "/" {
                    format!("/{name}")
                } else {
                    format!("{guest}/{name}")
                };
                stack.push((e.path(), child));
            }
        }
        out.insert(guest, rec);
    }
    (out, groups(inodes))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn groups(m: BTreeMap<u64, Vec<String>>) -> Vec<Vec<String>> {
    let mut g: Vec<Vec<String>> = m
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    g.sort();
    g
}

/// The tree a module carries, from `rvbox inspect --files --json`.
fn module_tree(module: &Path) -> (BTreeMap<String, Rec>, Vec<Vec<String>>) {
    let r = rvbox(
        &["inspect", "--files", "--json", module.to_str().unwrap()],
        b"",
    );
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in r.stdout_str().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let kind = v["type"].as_str().unwrap().to_string();
        let path = v["path"].as_str().unwrap().to_string();
        let n = |k: &str| v[k].as_u64().unwrap();
        if kind == "file" && n("nlink") > 1 {
            inodes.entry(n("ino")).or_default().push(path.clone());
        }
        let rec = Rec {
            mode: n("mode") as u32,
            uid: n("uid") as u32,
            gid: n("gid") as u32,
            size: n("size"),
            mtime: (v["mtime"].as_i64().unwrap(), n("mtime_nsec") as u32),
            nlink: (kind != "dir").then(|| n("nlink") as u32),
            target: v["target"].as_str().map(str::to_string),
            sha256: v["sha256"].as_str().map(str::to_string),
            rdev: v["rdev"]
                .as_array()
                .map(|a| (a[0].as_u64().unwrap() as u32, a[1].as_u64().unwrap() as u32)),
            kind,
        };
        out.insert(path, rec);
    }
    (out, groups(inodes))
}

fn differences(a: &BTreeMap<String, Rec>, b: &BTreeMap<String, Rec>) -> Vec<String> {
    let mut d = Vec::new();
    for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        if a.get(k) != b.get(k) {
            d.push(format!(
                "{k}:\n  umoci: {:?}\n  rvbox: {:?}",
                a.get(k),
                b.get(k)
            ));
        }
    }
    d
}

fn convert_ok(reference: &str, out: &Path, extra: &[&str]) {
    let mut args = vec!["convert", reference, "-o", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    let r = rvbox(&args, b"");
    assert_eq!(r.status, 0, "convert {reference}: {}", r.stderr_str());
}

#[test]
fn every_input_form_bundles_the_tree_umoci_unpacks() {
    let images = images();
    let rootfs = images.join("layers.rootfs");
    let (want, want_links) = host_tree(&rootfs);
    // The oracle itself has what the test image is about.
    for p in [
        "/hl/b",
        "/hl/c",
        "/opq/new",
        "/willbedir/x",
        "/willbefile",
        "/sparse/holes",
        "/opt/app/through",
        "/dev/disk",
        "/run/fifo",
    ] {
        assert!(want.contains_key(p), "oracle lacks {p}");
    }
    for p in ["/gone", "/gonefile", "/hl/a", "/opq/old", "/opq/sub"] {
        assert!(!want.contains_key(p), "oracle has {p}");
    }
    assert_eq!(want_links, vec![vec!["/hl/b".to_string(), "/hl/c".into()]]);
    assert_eq!(want["/bin/setuid-prog"].mode, 0o4755);
    assert_eq!(want["/sparse/holes"].size, (3 << 20) + 4);

    let forms = images.join("layers.forms");
    let layout = images.join("layers");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let references = [
        s(&layout),
        format!("oci:{}:latest", s(&layout)),
        format!("oci-archive:{}", s(&forms.join("oci.tar"))),
        format!("oci-archive:{}:latest", s(&forms.join("oci.tar"))),
        s(&forms.join("oci.tar")),
        format!("docker-archive:{}", s(&forms.join("docker.tar"))),
        format!(
            "docker-archive:{}:rvbox/layers:latest",
            s(&forms.join("docker.tar"))
        ),
        s(&forms.join("docker.tar")),
        format!("docker-archive:{}", s(&forms.join("docker.tar.gz"))),
        format!("oci:{}", s(&forms.join("zstd"))),
        format!("oci:{}", s(&forms.join("plain"))),
        format!("dir:{}", s(&rootfs)),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, reference) in references.iter().enumerate() {
        let out = dir.path().join(format!("{i}.wasm"));
        convert_ok(reference, &out, &[]);
        let (got, got_links) = module_tree(&out);
        let d = differences(&want, &got);
        assert!(d.is_empty(), "{reference}: {}", d.join("\n"));
        assert_eq!(got_links, want_links, "{reference}: hardlink groups");
    }
}

#[test]
fn image_config_is_kept_and_the_user_resolved_in_the_image() {
    let m = module("layers");
    let r = rvbox(
        &[
            "run",
            m.to_str().unwrap(),
            "sh",
            "-c",
            "id; pwd; echo $GREETING",
        ],
        b"",
    );
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    assert_eq!(r.stdout_str(), "uid=1000(app) gid=50(staff)\n/srv\nhello\n");
    let r = rvbox(&["inspect", "--json", m.to_str().unwrap()], b"");
    let v: serde_json::Value = serde_json::from_str(&r.stdout_str()).unwrap();
    let img = &v["image"];
    assert_eq!(
        img["config"]["entrypoint"],
        serde_json::json!(["/bin/busybox"])
    );
    assert_eq!(img["config"]["user"], "app:staff");
    assert_eq!(img["labels"]["org.example.note"], "two words");
    assert_eq!(
        img["exposed_ports"],
        serde_json::json!(["53/udp", "8080/tcp"])
    );
    assert!(img["config_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let text = rvbox(&["inspect", m.to_str().unwrap()], b"").stdout_str();
    assert!(text.contains("org.example.name=layers"), "{text}");
    assert!(text.contains("53/udp 8080/tcp"), "{text}");
}

#[test]
fn conversion_flags_override_the_config() {
    let images = images();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.wasm");
    convert_ok(
        images.join("layers").to_str().unwrap(),
        &out,
        &[
            "--entrypoint",
            r#"["/bin/busybox","sh","-c"]"#,
            "--cmd",
            r#"["id -u; pwd; echo $GREETING $EXTRA"]"#,
            "-e",
            "GREETING=bye",
            "--env",
            "EXTRA=x=y",
            "-w",
            "/tmp",
            "-u",
            "nobody",
        ],
    );
    let r = rvbox(&["run", out.to_str().unwrap()], b"");
    assert_eq!(r.status, 0, "{}", r.stderr_str());
    assert_eq!(r.stdout_str(), "65534\n/tmp\nbye x=y\n");
    // Dockerfile rules: a new entrypoint drops the image's Cmd; a string is shell form.
    convert_ok(
        images.join("layers").to_str().unwrap(),
        &out,
        &["--entrypoint", "echo from shell form; id -un"],
    );
    let r = rvbox(&["run", out.to_str().unwrap()], b"");
    assert_eq!(
        r.stdout_str(),
        "from shell form\napp\n",
        "{}",
        r.stderr_str()
    );
    // Bad flags: a clear error, no module.
    let _ = std::fs::remove_file(&out);
    for bad in [
        &["--cmd", "[\"unterminated"][..],
        &["-e", "NOEQUALS"][..],
        &["-w", "relative/dir"][..],
        &["--max-image-size", "lots"][..],
    ] {
        let img = images.join("layers");
        let mut args = vec![
            "convert",
            img.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(bad);
        let r = rvbox(&args, b"");
        assert_eq!(r.status, 125, "{bad:?}");
        assert_eq!(r.stderr_str().lines().count(), 1, "{}", r.stderr_str());
        assert!(r.stderr_str().starts_with("rvbox: "), "{}", r.stderr_str());
        assert!(!out.exists());
    }
}

#[test]
fn layer_semantics_as_the_guest_sees_them() {
    let m = module("layers");
    // As root: the image's user (app) may not read root's 0600 files, as on Linux.
    let script = "stat -c '%n %a %u:%g' /bin/setuid-prog /bin/setgid-prog /srv /srv/data /tmp /emptydir; \
                  stat -c '%n %s' /srv/data /sparse/holes /sparse/trailing-hole; \
                  [ $(stat -c %i /hl/b) = $(stat -c %i /hl/c) ] && echo same inode; stat -c %h /hl/b; \
                  cat /lnk/rel /lnk/abs /changed /dup /becomesfile; readlink /lnk/dangling; \
                  ls /opq; ls /willbedir; cat /willbefile; \
                  od -An -c -j 1048576 -N 6 /sparse/holes; cmp -n 1048572 /sparse/holes /dev/zero 4 0 && echo zeros; \
                  test -p /run/fifo && echo fifo";
    let r = rvbox(
        &["run", "-u", "root", m.to_str().unwrap(), "sh", "-c", script],
        b"",
    );
    assert_eq!(
        r.stdout_str(),
        "/bin/setuid-prog 4755 0:0\n\
         /bin/setgid-prog 2711 0:50\n\
         /srv 755 0:0\n\
         /srv/data 640 1000:1000\n\
         /tmp 1777 0:0\n\
         /emptydir 700 0:0\n\
         /srv/data 900\n/sparse/holes 3145732\n/sparse/trailing-hole 2097152\n\
         same inode\n2\n\
         layers\nlayers\nversion 2, longer than version 1\nsecond: the later entry wins\n\
         a symlink replaced by a file\n/nonexistent/target\n\
         new\nx\na directory replaced by a file\n\
         \x20  m   i   d   d   l   e\nzeros\nfifo\n",
        "{}",
        r.stderr_str()
    );
}
