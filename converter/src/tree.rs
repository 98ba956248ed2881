//! The image's filesystem as an in-memory tree of nodes. File contents live in an anonymous
//! temporary spool file, not in memory.
//!
//! Node 0 is the root directory. A hardlinked file is one node that several directory
//! entries refer to (its link count is the number of those entries). After
//! `layers::apply` every node is reachable from the root.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Index of a node in the tree.
pub type NodeId = usize;

/// Metadata of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky (`0o7777`); no file type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
}

impl Meta {
    /// What a directory gets when it is created implicitly: 0755, root's, time 0.
    pub const IMPLICIT_DIR: Meta = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        mtime_nsec: 0,
    };
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Entries by name (raw bytes, sorted).
    Dir(BTreeMap<Vec<u8>, NodeId>),
    /// A regular file whose content is at `offset..offset+len` in the spool.
    File {
        offset: u64,
        len: u64,
    },
    /// A symlink and its target, as stored in the layer.
    Symlink(Vec<u8>),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub meta: Meta,
    pub kind: NodeKind,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }
}

/// The filesystem tree.
#[derive(Debug)]
pub struct Tree {
    pub(crate) nodes: Vec<Node>,
    /// Spooled file contents.
    spool: File,
    /// Writes to the spool (a second handle on the same file), while the tree is built.
    writer: Option<BufWriter<File>>,
    spool_len: u64,
}

impl Tree {
    /// An empty tree: a root directory with implicit metadata and an empty spool.
    pub fn new() -> io::Result<Tree> {
        let spool = tempfile::tempfile()?;
        let writer = BufWriter::with_capacity(1 << 20, spool.try_clone()?);
        Ok(Tree {
            nodes: vec![Node {
                meta: Meta::IMPLICIT_DIR,
                kind: NodeKind::Dir(BTreeMap::new()),
            }],
            spool,
            writer: Some(writer),
            spool_len: 0,
        })
    }

    pub fn root(&self) -> NodeId {
        0
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Number of nodes (each hardlinked file counts once).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a node, not yet linked into any directory.
    pub(crate) fn add(&mut self, meta: Meta, kind: NodeKind) -> NodeId {
        self.nodes.push(Node { meta, kind });
        self.nodes.len() - 1
    }

    /// Children of a directory node (`None` for other nodes).
    pub fn children(&self, id: NodeId) -> Option<&BTreeMap<Vec<u8>, NodeId>> {
        match &self.nodes[id].kind {
            NodeKind::Dir(c) => Some(c),
            _ => None,
        }
    }

    /// Appends the whole of `r` to the spool; returns (offset, len).
    pub(crate) fn spool_from(&mut self, r: &mut dyn io::Read) -> io::Result<(u64, u64)> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the tree's spool is closed for writing"))?;
        let offset = self.spool_len;
        let len = io::copy(r, w)?;
        self.spool_len += len;
        Ok((offset, len))
    }

    /// Flushes the spool and closes it for writing.
    pub(crate) fn finish_spool(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        Ok(())
    }

    /// Bytes in the spool (deleted and replaced files included).
    pub fn spool_len(&self) -> u64 {
        self.spool_len
    }

    /// Reads `buf.len()` bytes of spooled content at `offset` (from a `NodeKind::File`).
    pub fn read_file(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.writer.is_some() {
            return Err(io::Error::other(
                "the tree is still being built; its spool is not readable yet",
            ));
        }
        self.spool.read_exact_at(buf, offset)
    }

    /// The whole content of a file node (for tests and small files).
    pub fn file_contents(&self, id: NodeId) -> io::Result<Vec<u8>> {
        match self.nodes[id].kind {
            NodeKind::File { offset, len } => {
                let mut buf = vec![0; len as usize];
                self.read_file(offset, &mut buf)?;
                Ok(buf)
            }
            _ => Err(io::Error::other("not a regular file")),
        }
    }

    /// The node at `path` ("a/b/c", leading `/` or `./` allowed), following no symlinks.
    pub fn lookup(&self, path: &[u8]) -> Option<NodeId> {
        let mut cur = self.root();
        for comp in path.split(|&b| b == b'/') {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            match &self.nodes[cur].kind {
                NodeKind::Dir(children) => cur = *children.get(comp)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// The node at `path`, following symlinks (in every component, the last too) the way
    /// the guest's kernel would inside this root: an absolute target starts at the root and
    /// `..` stops there. `None` if something is missing, a loop, or more than 40 symlinks.
    pub fn resolve(&self, path: &[u8]) -> Option<NodeId> {
        let mut stack: Vec<NodeId> = vec![self.root()];
        let mut queue: std::collections::VecDeque<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut links = 0;
        while let Some(comp) = queue.pop_front() {
            match comp {
                b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let cur = *stack.last()?;
            let child = *self.children(cur)?.get(comp)?;
            match &self.nodes[child].kind {
                NodeKind::Symlink(target) => {
                    links += 1;
                    if links > 40 {
                        return None;
                    }
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
                        queue.push_front(c);
                    }
                }
                NodeKind::Dir(_) => stack.push(child),
                _ if queue.is_empty() => return Some(child),
                _ => return None,
            }
        }
        stack.last().copied()
    }

    /// Number of directory entries referring to each node (the root counts 1).
    pub fn link_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.nodes.len()];
        if !counts.is_empty() {
            counts[0] = 1;
        }
        for n in &self.nodes {
            if let NodeKind::Dir(children) = &n.kind {
                for &c in children.values() {
                    counts[c] += 1;
                }
            }
        }
        counts
    }

    /// Drops the nodes no longer reachable from the root and renumbers the rest in the order
    /// they are reached from the root (root 0; a directory's new entries get consecutive ids
    /// in name order, then its subdirectories are numbered depth-first).
    pub(crate) fn compact(&mut self) {
        const UNSEEN: usize = usize::MAX;
        let mut new_id = vec![UNSEEN; self.nodes.len()];
        let mut order = Vec::new();
        let mut stack = vec![0usize];
        new_id[0] = 0;
        order.push(0);
        // Depth-first, entries in name order: push children reversed.
        let mut pending: Vec<NodeId> = Vec::new();
        while let Some(id) = stack.pop() {
            if let NodeKind::Dir(children) = &self.nodes[id].kind {
                pending.clear();
                for &c in children.values() {
                    if new_id[c] == UNSEEN {
                        new_id[c] = order.len();
                        order.push(c);
                        pending.push(c);
                    }
                }
                stack.extend(pending.iter().rev());
            }
        }
        let mut old: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order
            .iter()
            .map(|&o| {
                let mut n = old[o].take().expect("node visited once");
                if let NodeKind::Dir(children) = &mut n.kind {
                    for c in children.values_mut() {
                        *c = new_id[*c];
                    }
                }
                n
            })
            .collect();
    }
}
