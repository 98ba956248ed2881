//! Helpers for running the emulator natively (tests, benchmarks).

/// Finds the bundle in a module's bytes: the active data segment that starts with the
/// bundle magic.
pub fn find_bundle(module: &[u8]) -> Option<&[u8]> {
    use wasmparser::{Parser, Payload};
    for payload in Parser::new(0).parse_all(module) {
        if let Ok(Payload::DataSection(r)) = payload {
            for d in r.into_iter().flatten() {
                if d.data.starts_with(&crate::bundle::MAGIC) {
                    return Some(d.data);
                }
            }
        }
    }
    None
}
