//! rvbox-converter: turns an OCI image (linux/riscv64) into one WebAssembly module.
//!
//! Data flow: `image` finds the manifest, config and layers of the reference; `layers`
//! applies the layers in order into a `tree::Tree`; `rvbox_guest::bundle` serialises the
//! tree; `module` splices the bundle and `meta` into the embedded guest module.

pub mod aot;
pub mod convert;
pub mod error;
pub mod image;
pub mod layers;
pub mod listing;
pub mod meta;
pub mod module;
pub mod registry;
pub mod rootdir;
pub mod source;
pub mod tree;

/// Default of `--max-image-size`: the most uncompressed layer data a conversion reads. A
/// module's bundle lives in the guest's 4 GiB linear memory, so no larger image could run.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 4 << 30;

pub use convert::{convert, convert_with, AotReport, Error, Options, Overrides, Progress, Report};
pub use rvbox_guest as guest;
