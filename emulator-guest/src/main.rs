//! The guest entry point. In a module, the bundle is in linear memory (placed there by the
//! converter). Natively, `rvbox-guest MODULE.wasm [ARGS...]` runs the same emulator on the
//! bundle inside a module file, for tests and benchmarks.

fn main() {
    let host_env: Vec<(String, String)> = std::env::vars().collect();
    #[cfg(target_arch = "wasm32")]
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let Some(bundle) = rvbox_guest::host::embedded_bundle() else {
            let _ = rvbox_guest::host::write(
                2,
                b"rvbox: this module holds no image (it is the bare rvbox emulator); make one with `rvbox convert IMAGE -o app.wasm`\n",
            );
            rvbox_guest::host::exit(125);
        };
        // A host that asks for it (`RVBOX_RETURN_STATUS=1`: runner/node/run.mjs) gets the
        // status from the `rvbox_exit_status` export after `_start` returns normally, not
        // from proc_exit: Node 20's V8 has crashed unwinding proc_exit's exception.
        let returns = host_env
            .iter()
            .any(|(k, v)| k == "RVBOX_RETURN_STATUS" && v == "1");
        let status = rvbox_guest::boot::boot(bundle, args, host_env);
        if returns {
            rvbox_guest::host::finish(status);
            return;
        }
        rvbox_guest::host::exit(status);
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut args = std::env::args().skip(1);
        let Some(module) = args.next() else {
            eprintln!("usage: rvbox-guest MODULE.wasm [ARGS...]");
            std::process::exit(2);
        };
        let bytes = match std::fs::read(&module) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("rvbox-guest: {module}: {e}");
                std::process::exit(125);
            }
        };
        // The emulator keeps borrowing the bundle for the life of the process (as it does
        // its own linear memory under Wasm), so the module's bytes are never freed.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let Some(bundle) = rvbox_guest::native::find_bundle(bytes) else {
            eprintln!("rvbox-guest: {module}: no rvbox bundle in this module");
            std::process::exit(125);
        };
        let host_env = host_env
            .into_iter()
            .filter(|(k, _)| k.starts_with("RVBOX_") || k == "COLUMNS" || k == "LINES")
            .collect();
        let status = rvbox_guest::boot::boot(bundle, args.collect(), host_env);
        rvbox_guest::host::exit(status);
    }
}

/// The guest's exit status (see `host::exit_status`); -1 while it runs.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn rvbox_exit_status() -> i32 {
    rvbox_guest::host::exit_status()
}

/// The emulator's allocator: the system's, remembering the size of a request it could not
/// meet (the module's memory could not grow: the host's cap or wasm32's 4 GiB), so that a
/// host that sees the module abort can tell why (`rvbox_alloc_failed`).
#[cfg(target_arch = "wasm32")]
mod alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub static FAILED: AtomicUsize = AtomicUsize::new(0);

    pub struct Alloc;

    fn note(p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            FAILED.store(size.max(1), Ordering::Relaxed);
        }
        p
    }

    // SAFETY: every method passes its arguments, with the same contract, to `System`.
    unsafe impl GlobalAlloc for Alloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract for `alloc`.
            note(unsafe { System.alloc(layout) }, layout.size())
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract for `alloc_zeroed`.
            note(unsafe { System.alloc_zeroed(layout) }, layout.size())
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract for `dealloc`.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the caller's contract for `realloc`.
            note(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
        }
    }

    #[global_allocator]
    static GLOBAL: Alloc = Alloc;
}

/// The size of the last allocation the emulator could not get, or 0.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn rvbox_alloc_failed() -> usize {
    alloc::FAILED.load(std::sync::atomic::Ordering::Relaxed)
}
