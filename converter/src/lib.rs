//! rvbox-converter: turns an OCI image (linux/riscv64) into one WebAssembly module.
//!
//! Data flow: `image` finds the manifest, config and layers of the reference; `layers`
//! applies the layers in order into a `tree::Tree`; `rvbox_guest::bundle` serialises the
//! tree; `module` splices the bundle and `meta` into the embedded guest module.

pub mod convert;
pub mod error;
pub mod image;
pub mod layers;
pub mod meta;
pub mod module;
pub mod tree;

pub use convert::{convert, Error, Progress, Report};
pub use rvbox_guest as guest;
