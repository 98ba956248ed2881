//! Fuzzes the layer reader: any bytes as one layer blob (plain, gzip or zstd tar) through
//! decompression, the tar header guard, the tar reader and the applier (paths, symlinks in
//! parents, whiteouts, hardlinks, sparse files), then the tree's compaction. It must never
//! panic, hang or use unbounded memory: bad input is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = rvbox_converter::layers::fuzz_one_layer(data, 64 << 20) {
        // Every node is reachable and every directory entry points to a node.
        for id in 0..tree.len() {
            if let Some(children) = tree.children(id) {
                for &c in children.values() {
                    assert!(c < tree.len());
                }
            }
        }
        let _ = tree.resolve(b"a/b/../c");
    }
});
