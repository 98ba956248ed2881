//! `image::open` and `layers::apply` on small OCI layouts built here.

use std::io::Write;
use std::path::{Path, PathBuf};

use rvbox_converter::error::ConvertError;
use rvbox_converter::image::{self, Image};
use rvbox_converter::layers::{self, LayerProgress};
use rvbox_converter::tree::{NodeKind, Tree};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

// ---------------------------------------------------------------------------------------
// Tar layers

/// Builds a tar layer entry by entry.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h
}

impl Tar {
    fn new() -> Tar {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends with the name written raw into the header (no checks, so `..` works).
    fn raw(&mut self, mut h: tar::Header, name: &str, data: &[u8]) -> &mut Self {
        let field = &mut h.as_old_mut().name;
        assert!(name.len() < field.len(), "raw names are short");
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_meta(name, data, 0o644, 0, 0)
    }

    fn file_meta(&mut self, name: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        // append_data writes a GNU long-name entry for long paths.
        self.b.append_data(&mut h, name, data).unwrap();
        self
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(header(tar::EntryType::Directory, mode, 0), name, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, name, target).unwrap();
        self
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, name, target).unwrap();
        self
    }

    fn whiteout(&mut self, name: &str) -> &mut Self {
        self.raw(header(tar::EntryType::Regular, 0, 0), name, b"")
    }

    fn build(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

#[derive(Clone, Copy)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

// ---------------------------------------------------------------------------------------
// Layouts

struct Layout {
    dir: tempfile::TempDir,
}

/// A layer as stored: (media type, tar, compression).
struct L {
    media_type: &'static str,
    tar: Vec<u8>,
    comp: Comp,
}

fn gz(tar: Vec<u8>) -> L {
    L {
        media_type: OCI_GZIP,
        tar,
        comp: Comp::Gzip,
    }
}

/// Options for an image's config and manifest.
struct Img<'a> {
    arch: &'a str,
    docker: bool,
    layers: Vec<L>,
    /// Replaces the diff_ids computed from the layers.
    diff_ids: Option<Vec<String>>,
    config: Value,
}

impl Default for Img<'_> {
    fn default() -> Self {
        Img {
            arch: "riscv64",
            docker: false,
            layers: Vec::new(),
            diff_ids: None,
            config: json!({}),
        }
    }
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        Layout { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn reference(&self) -> String {
        format!("oci:{}", self.path().display())
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.path()
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    /// Stores a blob; returns its descriptor.
    fn blob(&self, media_type: &str, data: &[u8]) -> Value {
        let digest = sha(data);
        std::fs::write(self.blob_path(&digest), data).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": data.len()})
    }

    /// Stores an image's layers, config and manifest; returns the manifest's descriptor
    /// (without platform).
    fn image(&self, img: Img) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in &img.layers {
            let mt = if img.docker && l.media_type == OCI_GZIP {
                DOCKER_GZIP
            } else {
                l.media_type
            };
            descs.push(self.blob(mt, &compress(&l.tar, l.comp)));
            diff_ids.push(sha(&l.tar));
        }
        let config = json!({
            "architecture": img.arch,
            "os": "linux",
            "config": img.config,
            "rootfs": {"type": "layers", "diff_ids": img.diff_ids.unwrap_or(diff_ids)},
        });
        let config_desc = self.blob(
            if img.docker {
                DOCKER_CONFIG
            } else {
                OCI_CONFIG
            },
            config.to_string().as_bytes(),
        );
        let mt = if img.docker {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": config_desc,
            "layers": descs,
        });
        self.blob(mt, manifest.to_string().as_bytes())
    }

    fn index(&self, media_type: &str, manifests: Vec<Value>) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
        self.blob(media_type, index.to_string().as_bytes())
    }

    fn index_json(&self, manifests: Vec<Value>) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        std::fs::write(self.path().join("index.json"), index.to_string()).unwrap();
    }

    /// One riscv64 image of these layers, tagged latest.
    fn single(layers: Vec<L>) -> Layout {
        let l = Layout::new();
        let m = l.image(Img {
            layers,
            ..Default::default()
        });
        l.index_json(vec![tagged(m, "latest")]);
        l
    }
}

fn with_platform(mut desc: Value, arch: &str) -> Value {
    desc["platform"] = json!({"os": "linux", "architecture": arch});
    desc
}

fn tagged(mut desc: Value, tag: &str) -> Value {
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    desc
}

fn apply_all(image: &Image) -> Result<Tree, ConvertError> {
    layers::apply(image, &mut |_| {})
}

fn build(layers: Vec<L>) -> Tree {
    let l = Layout::single(layers);
    let image = image::open(&l.reference()).unwrap();
    apply_all(&image).unwrap()
}

fn contents(t: &Tree, path: &str) -> Vec<u8> {
    let id = t
        .lookup(path.as_bytes())
        .unwrap_or_else(|| panic!("{path} missing"));
    t.file_contents(id).unwrap()
}

fn names(t: &Tree, path: &str) -> Vec<String> {
    let id = t.lookup(path.as_bytes()).unwrap();
    t.children(id)
        .unwrap()
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Layer semantics

#[test]
fn files_dirs_and_metadata() {
    let long = format!("deep/{}/file", "n".repeat(150));
    let t = build(vec![gz(Tar::new()
        .dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/hostname", b"rvbox\n")
        .file_meta("usr/bin/su", b"su", 0o4755, 0, 0)
        .file_meta("home/u/x", b"", 0o600, 1000, 1001)
        .file(&long, b"long name")
        .symlink("bin", "usr/bin")
        .raw(
            {
                let mut h = header(tar::EntryType::Char, 0o666, 0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h
            },
            "dev/null",
            b"",
        )
        .raw(header(tar::EntryType::Fifo, 0o600, 0), "run/fifo", b"")
        .build())]);
    assert_eq!(contents(&t, "etc/hostname"), b"rvbox\n");
    assert_eq!(contents(&t, "/etc/hostname"), b"rvbox\n");
    assert_eq!(contents(&t, &long), b"long name");
    let su = t.node(t.lookup(b"usr/bin/su").unwrap());
    assert_eq!(su.meta.mode, 0o4755);
    assert_eq!(su.meta.mtime, 1_600_000_000);
    let x = t.node(t.lookup(b"home/u/x").unwrap());
    assert_eq!((x.meta.mode, x.meta.uid, x.meta.gid), (0o600, 1000, 1001));
    assert!(matches!(x.kind, NodeKind::File { len: 0, .. }));
    // Implicit parents: 0755 root, time 0.
    let usr = t.node(t.lookup(b"usr").unwrap());
    assert!(usr.is_dir());
    assert_eq!((usr.meta.mode, usr.meta.uid, usr.meta.mtime), (0o755, 0, 0));
    assert_eq!(
        t.node(t.lookup(b"bin").unwrap()).kind,
        NodeKind::Symlink(b"usr/bin".to_vec())
    );
    assert_eq!(
        t.node(t.lookup(b"dev/null").unwrap()).kind,
        NodeKind::CharDev { major: 1, minor: 3 }
    );
    assert_eq!(t.node(t.lookup(b"run/fifo").unwrap()).kind, NodeKind::Fifo);
    // lookup does not follow symlinks.
    assert_eq!(t.lookup(b"bin/su"), None);
    assert_eq!(
        names(&t, ""),
        ["bin", "deep", "dev", "etc", "home", "run", "usr"]
    );
}

#[test]
fn pax_mtime_and_ids() {
    let mut tar = Tar::new();
    tar.b
        .append_pax_extensions([
            ("mtime", b"1700000000.25".as_slice()),
            ("uid", b"70000".as_slice()),
        ])
        .unwrap();
    tar.file("f", b"x");
    let t = build(vec![gz(tar.build())]);
    let f = t.node(t.lookup(b"f").unwrap());
    assert_eq!(
        (f.meta.mtime, f.meta.mtime_nsec),
        (1_700_000_000, 250_000_000)
    );
    assert_eq!(f.meta.uid, 70000);
}

#[test]
fn whiteouts_remove_lower_entries_only() {
    let t = build(vec![
        gz(Tar::new()
            .file("a/f1", b"1")
            .file("a/f2", b"2")
            .file("c/d/e", b"e")
            .file("keep", b"k")
            .build()),
        gz(Tar::new()
            .whiteout("a/.wh.f1")
            .whiteout(".wh.c")
            .whiteout("nodir/.wh.x")
            .file("a/new", b"n")
            .whiteout("a/.wh.new") // same layer: stays
            .build()),
    ]);
    assert_eq!(names(&t, "a"), ["f2", "new"]);
    assert_eq!(t.lookup(b"c"), None);
    assert_eq!(t.lookup(b"nodir"), None);
    assert_eq!(names(&t, ""), ["a", "keep"]);
    // Removed nodes are gone from the tree, not just unlinked.
    assert_eq!(t.len(), 5); // root, a, a/f2, a/new, keep
}

#[test]
fn opaque_dirs_hide_lower_content_but_keep_same_layer() {
    let t = build(vec![
        gz(Tar::new()
            .file("d/old", b"o")
            .file("d/sub/deep", b"x")
            .file("other/o", b"o")
            .build()),
        gz(Tar::new()
            .dir("d/", 0o700)
            .file("d/before", b"b")
            .dir("d/sub/", 0o755)
            .file("d/sub/mine", b"m")
            .whiteout("d/.wh..wh..opq")
            .file("d/after", b"a")
            .build()),
    ]);
    assert_eq!(names(&t, "d"), ["after", "before", "sub"]);
    // d/sub was re-declared by the layer, its lower content is hidden all the same.
    assert_eq!(names(&t, "d/sub"), ["mine"]);
    assert_eq!(names(&t, "other"), ["o"]);
    assert_eq!(t.node(t.lookup(b"d").unwrap()).meta.mode, 0o700);
}

#[test]
fn hardlinks_across_layers_share_a_node() {
    let t = build(vec![
        gz(Tar::new().file("f", b"hello").build()),
        gz(Tar::new().hardlink("g", "f").build()),
        gz(Tar::new()
            .hardlink("sub/h", "./g")
            .file("f", b"replaced")
            .build()),
    ]);
    let (f, g, h) = (
        t.lookup(b"f").unwrap(),
        t.lookup(b"g").unwrap(),
        t.lookup(b"sub/h").unwrap(),
    );
    assert_eq!(g, h);
    assert_ne!(f, g);
    assert_eq!(t.file_contents(g).unwrap(), b"hello");
    assert_eq!(t.file_contents(f).unwrap(), b"replaced");
    let counts = t.link_counts();
    assert_eq!((counts[g], counts[f]), (2, 1));
}

#[test]
fn hardlink_to_missing_target_is_refused() {
    let l = Layout::single(vec![gz(Tar::new().hardlink("g", "nothere").build())]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("hardlink \"g\" -> \"nothere\""), "{msg}");
}

#[test]
fn dir_replaced_by_file_and_back() {
    let t = build(vec![
        gz(Tar::new()
            .file("x/child", b"c")
            .file("y", b"y")
            .dir("z/", 0o755)
            .file("z/kept", b"k")
            .build()),
        gz(Tar::new()
            .file("x", b"now a file")
            .dir("y/", 0o750)
            .file("y/c", b"now a dir")
            .file_meta("z", b"", 0o700, 0, 0)
            .build()),
        gz(Tar::new().dir("z/", 0o711).build()),
    ]);
    assert_eq!(contents(&t, "x"), b"now a file");
    assert_eq!(t.lookup(b"x/child"), None);
    assert_eq!(contents(&t, "y/c"), b"now a dir");
    assert_eq!(t.node(t.lookup(b"y").unwrap()).meta.mode, 0o750);
    // z: dir, then file, then an empty dir again.
    assert_eq!(names(&t, "z"), Vec::<String>::new());
    assert_eq!(t.node(t.lookup(b"z").unwrap()).meta.mode, 0o711);
}

#[test]
fn dir_over_dir_keeps_children_and_updates_meta() {
    let t = build(vec![
        gz(Tar::new().dir("d/", 0o755).file("d/a", b"a").build()),
        gz(Tar::new()
            .raw(
                {
                    let mut h = header(tar::EntryType::Directory, 0o1777, 0);
                    h.set_uid(5);
                    h
                },
                "d/",
                b"",
            )
            .file("d/b", b"b")
            .file("d/b", b"b2") // a later entry in the same layer wins
            .build()),
    ]);
    assert_eq!(names(&t, "d"), ["a", "b"]);
    assert_eq!(contents(&t, "d/b"), b"b2");
    let d = t.node(t.lookup(b"d").unwrap());
    assert_eq!((d.meta.mode, d.meta.uid), (0o1777, 5));
}

#[test]
fn dotdot_stays_inside_the_root() {
    let t = build(vec![gz(Tar::new()
        .raw(
            header(tar::EntryType::Regular, 0o644, 1),
            "../../etc/evil",
            b"e",
        )
        .raw(header(tar::EntryType::Regular, 0o644, 1), "a/../../b", b"b")
        .build())]);
    assert_eq!(contents(&t, "etc/evil"), b"e");
    assert_eq!(contents(&t, "b"), b"b");
    assert_eq!(names(&t, ""), ["b", "etc"]);
}

#[test]
fn symlinks_in_parents_resolve_inside_the_root() {
    let t = build(vec![
        gz(Tar::new()
            .dir("usr/lib/", 0o755)
            .symlink("lib", "usr/lib")
            .symlink("abs", "/usr/lib")
            .symlink("up", "../../..")
            .symlink("loop", "loop")
            .build()),
        gz(Tar::new()
            .file("lib/x", b"x")
            .file("abs/y", b"y")
            .file("up/escaped", b"e")
            .symlink("lib", "elsewhere") // the last component is replaced, not followed
            .build()),
    ]);
    assert_eq!(contents(&t, "usr/lib/x"), b"x");
    assert_eq!(contents(&t, "usr/lib/y"), b"y");
    assert_eq!(contents(&t, "escaped"), b"e");
    assert_eq!(
        t.node(t.lookup(b"lib").unwrap()).kind,
        NodeKind::Symlink(b"elsewhere".to_vec())
    );
}

#[test]
fn symlink_loops_and_files_as_parents_are_refused() {
    for (setup, entry, want) in [
        (
            Tar::new().symlink("loop", "loop").build(),
            "loop/x",
            "more than 40 symlinks",
        ),
        (
            Tar::new().file("f", b"").build(),
            "f/x",
            "is not a directory",
        ),
    ] {
        let l = Layout::single(vec![gz(setup), gz(Tar::new().file(entry, b"").build())]);
        let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(err.to_string().contains(entry), "{err}");
    }
}

#[test]
fn compressions_plain_gzip_zstd() {
    let l = Layout::single(vec![
        L {
            media_type: OCI_TAR,
            tar: Tar::new().file("plain", b"p").build(),
            comp: Comp::None,
        },
        gz(Tar::new().file("gzip", b"g").build()),
        L {
            media_type: OCI_ZSTD,
            tar: Tar::new().file("zstd", b"z").build(),
            comp: Comp::Zstd,
        },
        // Media type says plain, content is gzip: told by the magic bytes.
        L {
            media_type: OCI_TAR,
            tar: Tar::new().file("magic", b"m").build(),
            comp: Comp::Gzip,
        },
    ]);
    let image = image::open(&l.reference()).unwrap();
    let mut seen: Vec<LayerProgress> = Vec::new();
    let t = layers::apply(&image, &mut |p| seen.push(p)).unwrap();
    for f in ["plain", "gzip", "zstd", "magic"] {
        assert_eq!(contents(&t, f), &f.as_bytes()[..1]);
    }
    let done: Vec<_> = seen.iter().filter(|p| p.done).collect();
    assert_eq!(done.len(), 4);
    assert!(done
        .iter()
        .enumerate()
        .all(|(i, p)| p.index == i && p.count == 4 && p.entries == 1 && p.bytes_read == p.size));

    // Says gzip, is not.
    let l = Layout::single(vec![L {
        media_type: OCI_GZIP,
        tar: Tar::new().file("x", b"x").build(),
        comp: Comp::None,
    }]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("says compressed"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Finding the image

fn one_layer(arch: &str) -> Img<'_> {
    Img {
        arch,
        layers: vec![gz(Tar::new()
            .file(&format!("is-{arch}"), arch.as_bytes())
            .build())],
        ..Default::default()
    }
}

#[test]
fn platform_from_nested_index_and_config() {
    let l = Layout::new();
    let amd64 = with_platform(l.image(one_layer("amd64")), "amd64");
    let arm64 = l.image(one_layer("arm64")); // no platform: told by its config
    let mut rv = one_layer("riscv64");
    rv.config = json!({
        "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "echo hi"], "Env": ["PATH=/bin"],
        "WorkingDir": "/root", "User": "1000:1000",
    });
    let riscv = l.image(rv); // no platform either
    let inner = l.index(OCI_INDEX, vec![arm64, riscv.clone()]);
    let outer = l.index(OCI_INDEX, vec![amd64, inner]);
    l.index_json(vec![tagged(outer, "latest")]);

    for reference in [
        l.reference(),
        format!("{}:latest", l.reference()),
        l.path().display().to_string(),
    ] {
        let image = image::open(&reference).unwrap();
        assert_eq!(image.meta.reference, reference);
        assert_eq!(image.meta.platform, "linux/riscv64");
        assert_eq!(
            image.meta.manifest_digest,
            riscv["digest"].as_str().unwrap()
        );
        assert_eq!(image.meta.config.entrypoint, ["/bin/sh"]);
        assert_eq!(image.meta.config.cmd, ["-c", "echo hi"]);
        assert_eq!(image.meta.config.env, ["PATH=/bin"]);
        assert_eq!(image.meta.config.working_dir, "/root");
        assert_eq!(image.meta.config.user, "1000:1000");
        assert_eq!(image.layers.len(), 1);
        let t = apply_all(&image).unwrap();
        assert_eq!(names(&t, ""), ["is-riscv64"]);
    }
}

#[test]
fn docker_media_types() {
    let l = Layout::new();
    let amd64 = with_platform(
        l.image(Img {
            docker: true,
            ..one_layer("amd64")
        }),
        "amd64",
    );
    let riscv = with_platform(
        l.image(Img {
            docker: true,
            ..one_layer("riscv64")
        }),
        "riscv64",
    );
    let list = l.index(DOCKER_LIST, vec![amd64, riscv]);
    l.index_json(vec![tagged(list, "latest")]);
    let image = image::open(&l.reference()).unwrap();
    assert_eq!(image.layers[0].media_type, DOCKER_GZIP);
    assert_eq!(image.meta.platform, "linux/riscv64");
    let t = apply_all(&image).unwrap();
    assert_eq!(contents(&t, "is-riscv64"), b"riscv64");
}

#[test]
fn no_riscv64_lists_the_platforms() {
    let l = Layout::new();
    let amd64 = with_platform(l.image(one_layer("amd64")), "amd64");
    let arm64 = l.image(one_layer("arm64"));
    let list = l.index(OCI_INDEX, vec![amd64, arm64]);
    l.index_json(vec![tagged(list, "latest")]);
    let reference = format!("{}:latest", l.reference());
    let err = image::open(&reference).unwrap_err();
    assert!(matches!(err, ConvertError::NoPlatform { .. }));
    assert_eq!(
        err.to_string(),
        format!("{reference}: no linux/riscv64 image here; it has linux/amd64, linux/arm64")
    );
}

#[test]
fn tags_select_the_image() {
    let l = Layout::new();
    let a = l.image(Img {
        layers: vec![gz(Tar::new().file("v1", b"").build())],
        ..Default::default()
    });
    let b = l.image(Img {
        layers: vec![gz(Tar::new().file("v2", b"").build())],
        ..Default::default()
    });
    l.index_json(vec![tagged(a, "v1"), tagged(b, "docker.io/library/x:v2")]);
    let t = apply_all(&image::open(&format!("{}:v2", l.reference())).unwrap()).unwrap();
    assert_eq!(names(&t, ""), ["v2"]);
    let t = apply_all(&image::open(&format!("{}:v1", l.reference())).unwrap()).unwrap();
    assert_eq!(names(&t, ""), ["v1"]);

    let err = image::open(&format!("{}:v3", l.reference())).unwrap_err();
    assert!(
        err.to_string()
            .contains("no image tagged \"v3\" here; tags here: docker.io/library/x:v2, v1"),
        "{err}"
    );
    // Two tags, none latest: which one?
    let err = image::open(&l.reference()).unwrap_err();
    assert!(matches!(err, ConvertError::AmbiguousTag { .. }), "{err}");
}

#[test]
fn not_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display().to_string();
    let err = image::open(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{p}: not an OCI image layout (no oci-layout file); give an OCI layout directory (oci:DIR[:TAG]), an archive (oci-archive:FILE, docker-archive:FILE) or a root filesystem (dir:DIR)"
        )
    );
    let err = image::open(&format!("oci:{p}/missing")).unwrap_err();
    assert!(matches!(err, ConvertError::NoSuchImage { .. }), "{err}");

    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let err = image::open(&p).unwrap_err();
    assert!(matches!(err, ConvertError::LayoutVersion { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Verification

#[test]
fn tampered_layer_blob_is_refused() {
    let l = Layout::single(vec![gz(Tar::new().file("f", &[7u8; 4000]).build())]);
    let image = image::open(&l.reference()).unwrap();
    let path = &image.layers[0].blob.path;
    let mut data = std::fs::read(path).unwrap();
    let n = data.len();
    data[n / 2] ^= 0x55; // same size, different content
    std::fs::write(path, &data).unwrap();
    let err = apply_all(&image).unwrap_err();
    assert!(matches!(err, ConvertError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&image.layers[0].label), "{err}");

    // Appended bytes: caught by open (size).
    data[n / 2] ^= 0x55;
    data.extend_from_slice(b"junk");
    std::fs::write(path, &data).unwrap();
    let err = image::open(&l.reference()).unwrap_err();
    assert!(matches!(err, ConvertError::SizeMismatch { .. }), "{err}");
}

#[test]
fn tampered_manifest_and_config_are_refused() {
    for which in ["manifest", "config"] {
        let l = Layout::new();
        let m = l.image(one_layer("riscv64"));
        l.index_json(vec![m.clone()]);
        let mpath = l.blob_path(m["digest"].as_str().unwrap());
        let path = if which == "manifest" {
            mpath
        } else {
            let manifest: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
            l.blob_path(manifest["config"]["digest"].as_str().unwrap())
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text
            .replacen("riscv64", "riscv65", 1)
            .replacen("gzip", "gzap", 1);
        assert_ne!(text, tampered);
        std::fs::write(&path, tampered).unwrap();
        let err = image::open(&l.reference()).unwrap_err();
        assert!(
            matches!(err, ConvertError::DigestMismatch { .. }),
            "{which}: {err}"
        );
    }
}

#[test]
fn wrong_diff_id_is_refused() {
    let l = Layout::new();
    let tar1 = Tar::new().file("a", b"a").build();
    let tar2 = Tar::new().file("b", b"b").build();
    let m = l.image(Img {
        layers: vec![gz(tar1.clone()), gz(tar2)],
        diff_ids: Some(vec![sha(&tar1), sha(b"something else")]),
        ..Default::default()
    });
    l.index_json(vec![m]);
    let image = image::open(&l.reference()).unwrap();
    let err = apply_all(&image).unwrap_err();
    match &err {
        ConvertError::DiffIdMismatch { index, .. } => assert_eq!(*index, 1),
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("rootfs.diff_ids"), "{err}");
}

#[test]
fn digests_with_paths_are_refused() {
    let l = Layout::new();
    // A file outside blobs/ that a hostile index might point at.
    let outside = b"{}";
    std::fs::write(l.path().join("secret"), outside).unwrap();
    for digest in [
        "sha256:../../secret".to_string(),
        format!("sha256:../{}", &hex::encode(Sha256::digest(outside))[3..]),
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(outside)).to_uppercase()
        ),
        "sha1:0123".to_string(),
    ] {
        l.index_json(vec![
            json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 2}),
        ]);
        let err = image::open(&l.reference()).unwrap_err();
        assert!(
            matches!(err, ConvertError::BadDigest { .. }),
            "{digest}: {err}"
        );
        assert!(err.to_string().contains(&digest), "{err}");
    }
    // In a layer descriptor too.
    let m = l.image(one_layer("riscv64"));
    let mpath = l.blob_path(m["digest"].as_str().unwrap());
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(mpath).unwrap()).unwrap();
    manifest["layers"][0]["digest"] = json!("sha256:../../../etc/passwd");
    let m = l.blob(OCI_MANIFEST, manifest.to_string().as_bytes());
    l.index_json(vec![m]);
    let err = image::open(&l.reference()).unwrap_err();
    assert!(matches!(err, ConvertError::BadDigest { .. }), "{err}");
}

#[test]
fn missing_blob_is_named() {
    let l = Layout::new();
    let m = l.image(one_layer("riscv64"));
    l.index_json(vec![m.clone()]);
    std::fs::remove_file(l.blob_path(m["digest"].as_str().unwrap())).unwrap();
    let err = image::open(&l.reference()).unwrap_err();
    assert!(matches!(err, ConvertError::MissingBlob { .. }), "{err}");
    assert!(err.to_string().contains(m["digest"].as_str().unwrap()));
}

// ---------------------------------------------------------------------------------------
// The real busybox image (images/build.sh makes it, or finds it up to date).

fn images_dir() -> PathBuf {
    let st = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build.sh"))
        .args(["busybox", "busybox-amd64", "busybox-multi"])
        .status()
        .expect("run images/build.sh");
    assert!(st.success(), "images/build.sh failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/out")
}

#[test]
fn busybox_image() {
    let dir = images_dir().join("busybox");
    let image = image::open(&format!("oci:{}:latest", dir.display())).unwrap();
    assert_eq!(image.meta.platform, "linux/riscv64");
    assert_eq!(image.meta.config.cmd, ["sh"]);
    let t = apply_all(&image).unwrap();
    // bin -> usr/bin
    let id = t.resolve(b"bin/busybox").expect("bin/busybox");
    assert_eq!(Some(id), t.lookup(b"usr/bin/busybox"));
    assert_eq!(t.resolve(b"/sbin/../bin/ls"), Some(id));
    let NodeKind::File { offset, len } = t.node(id).kind else {
        panic!("bin/busybox is not a file: {:?}", t.node(id).kind);
    };
    assert!(len > 100_000);
    let mut elf = [0u8; 20];
    t.read_file(offset, &mut elf).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 243, "EM_RISCV");

    // The same image for another platform only, and in a multi-platform index.
    let amd64 = images_dir().join("busybox-amd64");
    if amd64.join("index.json").exists() {
        let r = format!("oci:{}", amd64.display());
        let err = image::open(&r).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{r}: no linux/riscv64 image here; it has linux/amd64")
        );
    }
    let multi = images_dir().join("busybox-multi");
    if multi.join("index.json").exists() {
        let m = image::open(&format!("oci:{}:latest", multi.display())).unwrap();
        assert_eq!(m.meta.manifest_digest, image.meta.manifest_digest);
    }

    // Compare with the unpacked rootfs (umoci's unpack of the same layer).
    let rootfs = images_dir().join("busybox.rootfs");
    if rootfs.is_dir() {
        let compared = compare_with_host(&t, &rootfs, b"");
        assert_eq!(
            compared + 1,
            t.len(),
            "nodes in the tree but not in the rootfs"
        );
    }
}

/// Checks every entry under `host` against the tree; returns how many there were.
fn compare_with_host(t: &Tree, host: &Path, prefix: &[u8]) -> usize {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut n = 0;
    for e in std::fs::read_dir(host).unwrap() {
        let e = e.unwrap();
        if prefix.is_empty() && e.file_name() == ".rvbox-oracle" {
            // Not the image's: the chroot oracle's copy of qemu (tests/oracle/qemu-run.sh).
            continue;
        }
        let mut path = prefix.to_vec();
        path.extend_from_slice(e.file_name().as_bytes());
        let show = String::from_utf8_lossy(&path).into_owned();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let id = t
            .lookup(&path)
            .unwrap_or_else(|| panic!("{show} not in the tree"));
        let node = t.node(id);
        assert_eq!(node.meta.mode, md.permissions().mode() & 0o7777, "{show}");
        assert_eq!(
            (node.meta.uid, node.meta.gid),
            (md.uid(), md.gid()),
            "{show}"
        );
        n += 1;
        match &node.kind {
            NodeKind::Dir(_) => {
                assert!(md.is_dir(), "{show}");
                path.push(b'/');
                n += compare_with_host(t, &e.path(), &path);
            }
            NodeKind::File { .. } => {
                assert!(md.is_file(), "{show}");
                assert_eq!(node.meta.mtime, md.mtime(), "{show}");
                assert_eq!(
                    t.file_contents(id).unwrap(),
                    std::fs::read(e.path()).unwrap(),
                    "{show}"
                );
            }
            NodeKind::Symlink(target) => {
                assert!(md.file_type().is_symlink(), "{show}");
                let host_target = std::fs::read_link(e.path()).unwrap();
                assert_eq!(
                    target.as_slice(),
                    host_target.as_os_str().as_bytes(),
                    "{show}"
                );
            }
            k => panic!("{show}: unexpected {k:?}"),
        }
    }
    n
}

// ---------------------------------------------------------------------------------------
// Hostile input

/// A PAX extended header entry (`x`) carrying `records`.
fn pax_header(t: &mut Tar, records: &[(&str, &str)]) {
    let mut data = Vec::new();
    for (k, v) in records {
        // "LEN key=value\n", LEN counting itself.
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    let h = header(tar::EntryType::XHeader, 0o644, data.len() as u64);
    t.raw(h, "PaxHeaders/x", &data);
}

#[test]
fn absolute_paths_and_hardlinks_outside_stay_inside_or_fail() {
    let t = build(vec![gz(Tar::new()
        .raw(header(tar::EntryType::Regular, 0o644, 1), "/etc/abs", b"a")
        .file("etc/passwd", b"image's own")
        .build())]);
    assert_eq!(contents(&t, "etc/abs"), b"a");
    // A hardlink "to the host's /etc/passwd" is a link to the image's own.
    let t = build(vec![gz(Tar::new()
        .file("etc/passwd", b"image's own")
        .hardlink("x", "../../../etc/passwd")
        .build())]);
    assert_eq!(contents(&t, "x"), b"image's own");
    // To something the image does not have: refused, naming the entry.
    let l = Layout::single(vec![gz(Tar::new()
        .hardlink("x", "../../../etc/shadow")
        .build())]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("no such file earlier"), "{err}");
}

#[test]
fn duplicate_entries_the_last_wins() {
    let t = build(vec![gz(Tar::new()
        .file("f", b"first")
        .file("f", b"second")
        .dir("d/", 0o700)
        .file("d/x", b"x")
        .dir("d/", 0o755)
        .build())]);
    assert_eq!(contents(&t, "f"), b"second");
    assert_eq!(names(&t, "d"), ["x"]);
    assert_eq!(t.node(t.lookup(b"d").unwrap()).meta.mode, 0o755);
}

#[test]
fn truncated_layers_are_refused() {
    let full = Tar::new()
        .file("a", &[1u8; 5000])
        .file("b", &[2u8; 5000])
        .build();
    for cut in [600, 3000, 6000, full.len() - 1024] {
        for comp in [Comp::None, Comp::Gzip, Comp::Zstd] {
            let tar = full[..cut].to_vec();
            let stored = compress(&tar, comp);
            // Also a compressed stream cut short (the tar inside complete or not).
            let stored_cut = stored[..stored.len() * 3 / 4].to_vec();
            for blob in [stored, stored_cut] {
                let l = Layout::new();
                let layer = l.blob(OCI_TAR, &blob);
                let config = json!({"architecture":"riscv64","os":"linux",
                    "rootfs":{"type":"layers","diff_ids":[sha(&full)]}});
                let c = l.blob(OCI_CONFIG, config.to_string().as_bytes());
                let m =
                    json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"config":c,"layers":[layer]});
                let md = l.blob(OCI_MANIFEST, m.to_string().as_bytes());
                l.index_json(vec![tagged(md, "latest")]);
                let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
                assert!(
                    matches!(
                        err,
                        ConvertError::BadLayer { .. } | ConvertError::DiffIdMismatch { .. }
                    ),
                    "cut {cut}: {err}"
                );
            }
        }
    }
}

#[test]
fn decompression_bombs_stop_at_the_size_limit() {
    // 64 MiB of zeros: ~64 KiB of gzip.
    let tar = Tar::new().file("bomb", &vec![0u8; 64 << 20]).build();
    let l = Layout::single(vec![gz(tar)]);
    let image = image::open(&l.reference()).unwrap();
    let err = layers::apply_limited(&image, 16 << 20, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ConvertError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("--max-image-size"), "{err}");
    // Under a limit it fits.
    assert!(layers::apply_limited(&image, 80 << 20, &mut |_| {}).is_ok());

    // A 1 TiB sparse file made of holes counts too, without writing a byte of it.
    let mut t = Tar::new();
    pax_header(
        &mut t,
        &[
            ("GNU.sparse.major", "0"),
            ("GNU.sparse.minor", "1"),
            ("GNU.sparse.size", "1099511627776"),
            ("GNU.sparse.map", "0,4"),
        ],
    );
    t.file("holes", b"data");
    let l = Layout::single(vec![gz(t.build())]);
    let image = image::open(&l.reference()).unwrap();
    let err = apply_all(&image).unwrap_err();
    assert!(matches!(err, ConvertError::TooLarge { .. }), "{err}");
}

#[test]
fn huge_long_names_are_refused_before_they_are_loaded() {
    // A GNU long name entry of 64 MiB (compressed to almost nothing).
    let mut t = Tar::new();
    let name = vec![b'n'; 64 << 20];
    let h = header(tar::EntryType::GNULongName, 0o644, name.len() as u64);
    t.raw(h, "././@LongLink", &name);
    t.file("x", b"x");
    let l = Layout::single(vec![gz(t.build())]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("GNU long name entry of 67108864 bytes"),
        "{err}"
    );
    // The same for a PAX header.
    let mut t = Tar::new();
    let v = "p".repeat(2 << 20);
    pax_header(&mut t, &[("path", &v)]);
    t.file("x", b"x");
    let l = Layout::single(vec![gz(t.build())]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("PAX header entry"), "{err}");
}

#[test]
fn pax_sparse_formats_0_0_and_0_1() {
    // 0.1: the map as one record, name and real size in records.
    let mut t = Tar::new();
    pax_header(
        &mut t,
        &[
            ("GNU.sparse.major", "0"),
            ("GNU.sparse.minor", "1"),
            ("GNU.sparse.name", "real/name"),
            ("GNU.sparse.size", "20"),
            ("GNU.sparse.map", "2,3,10,2"),
        ],
    );
    t.file("GNUSparseFile.1/name", b"abcde");
    // 0.0: repeated offset/numbytes records.
    pax_header(
        &mut t,
        &[
            ("GNU.sparse.size", "8"),
            ("GNU.sparse.offset", "0"),
            ("GNU.sparse.numbytes", "1"),
            ("GNU.sparse.offset", "7"),
            ("GNU.sparse.numbytes", "1"),
        ],
    );
    t.file("old", b"xy");
    let tree = build(vec![gz(t.build())]);
    assert_eq!(
        contents(&tree, "real/name"),
        b"\0\0abc\0\0\0\0\0de\0\0\0\0\0\0\0\0"
    );
    assert_eq!(contents(&tree, "old"), b"x\0\0\0\0\0\0y");
    // A map past the end of the file: refused.
    let mut t = Tar::new();
    pax_header(
        &mut t,
        &[("GNU.sparse.size", "4"), ("GNU.sparse.map", "2,5")],
    );
    t.file("bad", b"abcde");
    let l = Layout::single(vec![gz(t.build())]);
    let err = apply_all(&image::open(&l.reference()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("sparse map"), "{err}");
}

#[test]
fn very_many_files() {
    let mut t = Tar::new();
    for i in 0..50_000 {
        t.file(&format!("d{}/f{i}", i % 100), b"");
    }
    let tree = build(vec![gz(t.build())]);
    assert_eq!(names(&tree, "d7").len(), 500);
    assert_eq!(tree.len(), 1 + 100 + 50_000);
}
