//! End-to-end tests: real images from `images/`, converted by the real `rvbox` binary, run
//! under `rvbox run` (wasmtime) and Node's `node:wasi`, and compared with `qemu-riscv64`
//! running the same riscv64 binaries.

mod support;

mod aot;
mod applets;
mod bad_input;
mod big_env;
mod browser;
mod cpython;
mod damage;
mod hosts;
mod image_forms;
mod init;
mod memory;
mod node_heap;
mod processes;
mod programs;
mod registry;
mod run_options;
mod stress;
mod tty;
mod volumes;
