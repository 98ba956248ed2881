// A WASI host that lacks something rvbox modules may meet in the wild: Node's node:wasi
// with one of its functions taken away. Used by tests/e2e/hosts.rs.
//
//   node host_variant.mjs VARIANT MODULE.wasm [ARGS...]
//
// VARIANT: `noclock` (clock_time_get fails with ENOSYS, as a host without clocks),
// `plain` (node:wasi as it is, no preopens, no environment).
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [variant, path, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: [path, ...args],
  env: { RVBOX_RETURN_STATUS: '1' },
  preopens: {},
  returnOnExit: true,
});
const imports = wasi.getImportObject();
const ENOSYS = 52;
if (variant === 'noclock') {
  imports.wasi_snapshot_preview1.clock_time_get = () => ENOSYS;
  imports.wasi_snapshot_preview1.clock_res_get = () => ENOSYS;
} else if (variant !== 'plain') {
  throw new Error(`unknown variant ${variant}`);
}
const module = await WebAssembly.compile(readFileSync(path));
const instance = await WebAssembly.instantiate(module, imports);
let status = wasi.start(instance);
const recorded = instance.exports.rvbox_exit_status?.() ?? -1;
if (recorded >= 0) status = recorded;
process.exitCode = status;
