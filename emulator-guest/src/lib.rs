//! rvbox-guest: a RISC-V (RV64GC) user-mode Linux emulator.
//!
//! Built for `wasm32-wasip1` it is the code inside every rvbox module; built natively it is
//! the same emulator, for tests and benchmarks. Layers, from the bottom:
//! - `mem`: guest pages and permissions; `cpu`: the RV64GC interpreter. Neither knows Linux.
//! - `bundle`: the read-only image filesystem format written by the converter.
//! - `vfs`: the guest's file tree (image + writable layer + synthetic /dev, /proc).
//! - `linux`: the Linux personality: ELF loading, the process, system calls.
//! - `host`, `hostfs`: the only code that talks to WASI (or the native OS); `hostfs` is
//!   the host's files behind volumes.
//! - `boot` and `knobs`: from the module's arguments and environment to the first process.

pub mod boot;
pub mod bundle;
pub mod cpu;
pub mod host;
pub mod hostfs;
pub mod knobs;
pub mod linux;
pub mod mem;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod vfs;
