#!/usr/bin/env -S node --
// Runs an rvbox module under Node's node:wasi (WASI preview1).
//
//   node runner/node/run.mjs [OPTIONS] MODULE.wasm [--] [ARGS...]
//
// OPTIONS are `rvbox run`'s, with the same meaning:
//   -e, --env KEY=VALUE | KEY   a variable (KEY alone: the host's value); wins over --env-file
//   -v, --volume HOST:GUEST[:ro]  a host directory at GUEST in the container
//   --env-file FILE             KEY=VALUE lines (docker's format)
//   -w, --workdir DIR           the working directory instead of the image's
//   --entrypoint PROG           instead of the image's Entrypoint (and Cmd); "" for none
//   -u, --user USER[:GROUP]     instead of the image's User
//   --memory LIMIT              the guest's memory limit (512m, 2g)
//   --timeout DURATION          end the run after DURATION (10, 500ms, 2m) with status 124
// The options become the guest's RVBOX_* variables (emulator-guest/src/knobs.rs): the guest
// applies them itself. Node cannot interrupt wasm: --timeout is the guest's own (a guest
// blocked reading stdin waits for input). --memory also caps the module's memory as `rvbox
// run` does (runner/src/run.rs, memory_cap), by declaring a maximum for it.
//
// The guest gets ARGS after argv[0] (the module's file name), only the environment the
// options give (the host environment does not leak in, as with `docker run`), this
// process's stdin/stdout/stderr, and as preopened directories the volumes given with -v
// (named by their path in the container; `:ro` is enforced by the guest, told by
// RVBOX_READONLY, as node:wasi itself cannot refuse writes). Exits with the guest's exit
// status; with 125 after a one-line `rvbox: ...` message if the options are wrong, the
// module is not an rvbox module, cannot be loaded, or traps.

import { readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

// Node's node:wasi meets V8's fast API calls (nodejs/node#46777, open; V8 bug 13753;
// nodejs/node#53087 for Node 22). node:wasi gives V8 a "fast" C++ entry for each WASI
// function (nodejs/node#43697), which wasm code calls directly, as a leaf that must not
// start a garbage collection (node's doc/contributing/adding-v8-fast-api.md: "Fast API
// functions may not trigger garbage collection"). But uvwasi allocates through node's
// NgLibMemoryManager, which reports each allocation to V8
// (Isolate::AdjustAmountOfExternalAllocatedMemory), and V8 may answer with a full
// mark-compact right there once incremental marking (begun by the pressure of the module's
// memory.grow) is done. Seen under gdb: Heap::CollectGarbage called from
// NgLibMemoryManager::MallocImpl <- uvwasi_fd_read <- WasiFunction<FdRead>::FastCallback,
// four times in one sqlite3 run. That GC does not see the stack under the call as it is, so
// the heap is corrupted and a later GC dies: "Check failed:
// marking_state_->GreyToBlack(object)", "addr + aligned_size <= chunk_->area_end()",
// "unreachable code", SIGSEGV in MarkCompactCollector; and the bytecode of the JS frames
// under the guest (wasi.start) is flushed while they run: SIGSEGV in
// HandlerTable::LookupRange unwinding proc_exit into them. Node 20.20.2 without flags:
// xz -9 of 1 MiB crashed 8 runs of 8, a bash loop of file work on a volume 8 of 8, sqlite3
// reading 20000 INSERTs 7 of 20. --single-threaded-gc alone: 8 of 8, 5 of 8, 0 of 20;
// --no-flush-bytecode alone: 0 of 8, 8 of 8, 0 of 20; --no-turbo-fast-api-calls alone:
// none (python3 loops: no crash in any).
//
// So wasm gets node:wasi's functions behind plain JS functions (jsImports below): it calls
// JS, never a fast API entry, and node:wasi's ordinary callback runs, where a GC is
// allowed. The wrappers' own calls stay ordinary ones once optimized (see viaJs). No
// V8 flags are needed: `node run.mjs MODULE ...`.
//
// With --env-file, put `--` before run.mjs (`node -- run.mjs --env-file F ...`; the #!
// line does): Node 20 takes a `--env-file` anywhere in its command line as its own and
// exits if the file is missing (nodejs/node#54232), unless it comes after `--`.

// node:wasi announces itself with an ExperimentalWarning; keep stderr to the guest's own.
// Installed before node:wasi is loaded (hence the dynamic import below).
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  const text = typeof warning === 'string' ? warning : warning?.message;
  if ((type === 'ExperimentalWarning' || warning?.name === 'ExperimentalWarning') && /WASI/.test(text ?? '')) {
    return;
  }
  return emitWarning.call(process, warning, ...rest);
};

// Must match converter/src/meta.rs.
const SECTION = 'rvbox';
const FORMAT = 1;
const TRAP_STATUS = 125;

class RvboxError extends Error {}

// Writes to fd 2 directly: process.stderr could switch a shared pipe to non-blocking mode
// under the guest's writes.
function fail(msg, status = TRAP_STATUS) {
  try {
    writeSync(2, `rvbox: ${msg}\n`);
  } catch {
    // stderr closed: nothing to tell
  }
  process.exit(status);
}

function usage() {
  fail('usage: node run.mjs [-e KEY=VALUE] [--env-file FILE] [-v HOST:GUEST[:ro]] [-w DIR] [--entrypoint PROG] [-u USER[:GROUP]] [--memory LIMIT] [--timeout DURATION] MODULE.wasm [--] [ARGS...]');
}

// Parses -v HOST:GUEST[:ro|rw] as `rvbox run` does (runner/src/run.rs, Volume::parse).
function parseVolume(spec) {
  const parts = spec.split(':');
  const bad = () => fail(`-v ${JSON.stringify(spec)}: expected HOST-DIR:CONTAINER-DIR[:ro]`);
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) bad();
  const [host, guestRaw, opts = ''] = parts;
  if (!guestRaw.startsWith('/')) fail(`-v ${JSON.stringify(spec)}: the container path ${JSON.stringify(guestRaw)} must be absolute`);
  if (guestRaw.split('/').includes('..')) fail(`-v ${JSON.stringify(spec)}: the container path must not contain '..'`);
  let readOnly = false;
  for (const o of opts.split(',').filter((o) => o)) {
    if (o === 'ro' || o === 'readonly') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else fail(`-v ${JSON.stringify(spec)}: unknown option ${JSON.stringify(o)} (rvbox knows ro and rw)`);
  }
  let path;
  try {
    path = realpathSync(host);
  } catch (e) {
    fail(`-v ${JSON.stringify(spec)}: host directory ${JSON.stringify(host)}: ${e.code === 'ENOENT' ? 'No such file or directory' : e.message}`);
  }
  if (!statSync(path).isDirectory()) {
    fail(`-v ${JSON.stringify(spec)}: ${JSON.stringify(host)} is not a directory (volumes are directories: WASI hands a module directories only)`);
  }
  const guest = '/' + guestRaw.split('/').filter((c) => c && c !== '.').join('/');
  if (guest === '/') fail(`-v ${JSON.stringify(spec)}: a volume cannot be mounted on / (the image is the root)`);
  return { host: path, guest, readOnly };
}

// The guest's memory limit in bytes as the guest reads RVBOX_MEMORY (emulator-guest/src/
// knobs.rs, parse_memory), or null if it is not one (the guest then says what is wrong).
function memoryLimit(text) {
  const m = /^(\d*\.?\d*)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(text.trim());
  if (!m || m[1] === '' || m[1] === '.') return null;
  const shift = { '': 0, b: 0, k: 10, m: 20, g: 30, t: 40 }[(m[2] ?? '').charAt(0).toLowerCase()];
  return Math.floor(Number(m[1]) * 2 ** shift);
}

// The most memory the module may have with the guest's limit `limit`: its initial memory,
// the limit, and room for the emulator's own data (as runner/src/run.rs, memory_cap).
function memoryCap(initial, limit) {
  return initial + limit + Math.floor(limit / 4) + 256 * 2 ** 20;
}

// Writes an unsigned LEB128.
function putLeb(out, value) {
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
}

// The module with a maximum declared for its memory so that it cannot grow past `limit`
// bytes of guest memory (see memoryCap): node:wasi has no limiter, but V8 keeps a memory
// within its maximum (memory.grow fails). Returns [bytes, cap in bytes], or [bytes, null]
// if the module defines no plain 32-bit memory.
function capMemory(bytes, limit) {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos];
    const size = leb(bytes, pos + 1);
    if (!size) break;
    const [len, start] = size;
    if (id === 5) {
      const count = leb(bytes, start);
      if (!count || count[0] !== 1) break;
      let p = count[1];
      const flags = bytes[p++];
      if (flags & ~1) break; // shared or 64-bit
      const min = leb(bytes, p);
      if (!min) break;
      let max = 65536;
      if (flags & 1) {
        const m = leb(bytes, min[1]);
        if (!m) break;
        max = m[0];
      }
      const capPages = Math.min(max, Math.floor(memoryCap(min[0] * 65536, limit) / 65536));
      const payload = [];
      putLeb(payload, 1); // one memory
      payload.push(1); // with a maximum
      putLeb(payload, min[0]);
      putLeb(payload, capPages);
      const section = [5];
      putLeb(section, payload.length);
      const out = Buffer.concat([
        bytes.subarray(0, pos),
        Buffer.from(section),
        Buffer.from(payload),
        bytes.subarray(start + len),
      ]);
      return [out, capPages * 65536];
    }
    pos = start + len;
  }
  return [bytes, null];
}

// Reads an unsigned LEB128 at bytes[pos]; returns [value, next position] or null.
function leb(bytes, pos) {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (pos >= bytes.length) return null;
    const b = bytes[pos++];
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [value, pos];
    mul *= 128;
  }
  return null;
}

// The module's metadata: the JSON of the `rvbox` custom section, which must be the
// module's first section. Same checks and messages as rvbox_converter::meta::read_meta.
export function readMeta(name, bytes) {
  const magic = [0x00, 0x61, 0x73, 0x6d];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) {
    throw new RvboxError(`${name}: not a WebAssembly module`);
  }
  const notRvbox = () => new RvboxError(`${name}: not an rvbox module (no '${SECTION}' section at its start)`);
  let pos = 8;
  if (bytes[pos++] !== 0) throw notRvbox();
  const size = leb(bytes, pos);
  if (!size) throw notRvbox();
  const [len, start] = size;
  if (start + len > bytes.length) throw new RvboxError(`${name}: damaged rvbox metadata: section cut short`);
  const nameLen = leb(bytes, start);
  if (!nameLen || nameLen[1] + nameLen[0] > start + len) throw notRvbox();
  const secName = new TextDecoder().decode(bytes.subarray(nameLen[1], nameLen[1] + nameLen[0]));
  if (secName !== SECTION) throw notRvbox();
  const data = bytes.subarray(nameLen[1] + nameLen[0], start + len);
  let meta;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (e) {
    throw new RvboxError(`${name}: damaged rvbox metadata: ${e.message}`);
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.format !== 'number') {
    throw new RvboxError(`${name}: damaged rvbox metadata: missing field \`format\``);
  }
  if (meta.format !== FORMAT) {
    throw new RvboxError(
      `${name}: made by an incompatible rvbox (module format ${meta.format}, this rvbox reads ${FORMAT}); convert the image again with this rvbox`,
    );
  }
  return meta;
}

// `--env-file`: docker's format (its opts/envfile.go), as runner/src/main.rs reads it.
function readEnvFile(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    fail(`--env-file ${path}: ${e.code === 'ENOENT' ? 'No such file or directory (os error 2)' : e.message}`);
  }
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    // Which line: the first one that does not decode.
    const lines = bytes.toString('latin1').split('\n');
    let n = 0;
    for (let i = 0; i < lines.length; i++) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(lines[i], 'latin1'));
      } catch {
        n = i + 1;
        break;
      }
    }
    fail(`--env-file ${path}: line ${n}: not valid UTF-8`);
  }
  const pairs = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') fail(`--env-file ${path}: line ${i + 1}: no variable name: ${JSON.stringify(line)}`);
    if (/\s/.test(key)) fail(`--env-file ${path}: line ${i + 1}: the variable name ${JSON.stringify(key)} contains spaces`);
    if (eq >= 0) pairs.push([key, line.slice(eq + 1)]);
    else if (process.env[key] !== undefined) pairs.push([key, process.env[key]]);
  });
  return pairs;
}

// Options as `rvbox run` takes them (before or after MODULE), then ARGS: from the first
// word after MODULE that is no option, or after `--`.
function parseArgs(argv) {
  let module;
  const envFiles = [];
  const envs = [];
  const knobs = {};
  const volumes = [];
  const withValue = {
    '-e': 'env', '--env': 'env', '--env-file': 'env-file', '-v': 'volume', '--volume': 'volume',
    '-w': 'workdir', '--workdir': 'workdir', '--entrypoint': 'entrypoint',
    '-u': 'user', '--user': 'user', '--memory': 'memory', '--timeout': 'timeout',
  };
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') {
      i++;
      if (module === undefined && i < argv.length) module = argv[i++];
      break;
    }
    if (a === '-h' || a === '--help') usage();
    let name;
    let value;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0 && withValue[a.slice(0, eq)]) {
      name = withValue[a.slice(0, eq)];
      value = a.slice(eq + 1);
      i++;
    } else if (withValue[a]) {
      name = withValue[a];
      value = argv[i + 1];
      if (value === undefined) fail(`a value is required for '${a}' but none was supplied`);
      i += 2;
    } else if (a.startsWith('-') && a !== '-' && module === undefined) {
      fail(`unexpected argument '${a}' found`);
    } else if (module === undefined) {
      module = a;
      i++;
      continue;
    } else {
      break;
    }
    if (name === 'env') {
      const k = value.indexOf('=');
      if (k === 0 || value === '') fail(`-e ${JSON.stringify(value)}: give KEY=VALUE or KEY`);
      if (k > 0) envs.push([value.slice(0, k), value.slice(k + 1)]);
      // KEY alone: the host's value, if it has one (as docker run -e KEY).
      else if (process.env[value] !== undefined) envs.push([value, process.env[value]]);
    } else if (name === 'env-file') {
      envFiles.push(value);
    } else if (name === 'volume') {
      volumes.push(parseVolume(value));
    } else {
      knobs[name] = value;
    }
  }
  if (module === undefined) usage();
  // As rvbox run: --env-file first, then -e (a later one wins), then the knobs.
  const env = {};
  for (const f of envFiles) for (const [k, v] of readEnvFile(f)) env[k] = v;
  for (const [k, v] of envs) env[k] = v;
  for (const [k, v] of Object.entries(knobs)) env[`RVBOX_${k.toUpperCase()}`] = v;
  const preopens = {};
  for (const v of volumes) {
    if (v.guest in preopens) fail(`two volumes at ${v.guest} in the container`);
    preopens[v.guest] = v.host;
  }
  const ro = volumes.filter((v) => v.readOnly).map((v) => v.guest);
  if (ro.length > 0) env.RVBOX_READONLY = ro.join(',');
  env.RVBOX_RETURN_STATUS = '1';
  return { module, args: argv.slice(i), env, preopens };
}

// The import object with each of node:wasi's functions behind a plain JS function, so that
// wasm calls them as JS and never through a V8 fast API call (see the header).
function jsImports(imports) {
  const out = {};
  for (const [ns, funcs] of Object.entries(imports)) {
    out[ns] = {};
    for (const [name, f] of Object.entries(funcs)) {
      out[ns][name] = typeof f === 'function' ? viaJs(f) : f;
    }
  }
  return out;
}

// One function literal for every import: its closures share one feedback vector, so the
// call of `f` in them sees all of node:wasi's functions and stays a generic call when V8
// optimizes it, not a fast API call from JS either (which Node 20's node:wasi would turn
// down anyway; later ones would not). Under gdb, Node 20: 30000 fd_write calls, every one
// through node:wasi's ordinary callback.
function viaJs(f) {
  return (...args) => f(...args);
}

async function main() {
  const { module: path, args, env, preopens } = parseArgs(process.argv.slice(2));
  const name = basename(path);

  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    fail(`${path}: ${e.code === 'ENOENT' ? 'No such file or directory' : e.message}`);
  }
  try {
    readMeta(path, bytes);
  } catch (e) {
    if (e instanceof RvboxError) fail(e.message);
    throw e;
  }

  // --memory: the module's memory gets a maximum.
  let cap = null;
  const limit = env.RVBOX_MEMORY === undefined ? null : memoryLimit(env.RVBOX_MEMORY);
  if (limit !== null) [bytes, cap] = capMemory(bytes, limit);

  let module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (e) {
    fail(`compiling ${path}: ${e.message}`);
  }
  bytes = null;
  // Belt and braces: the engine agrees that the section is there.
  if (WebAssembly.Module.customSections(module, SECTION).length === 0) {
    fail(`${path}: not an rvbox module (no '${SECTION}' section at its start)`);
  }

  const { WASI } = await import('node:wasi');
  const wasi = new WASI({
    version: 'preview1',
    args: [name, ...args],
    env,
    preopens,
    // The guest ends by returning from _start, its status in the rvbox_exit_status export
    // (RVBOX_RETURN_STATUS=1 asks for that): Node 20's V8 has crashed (SIGSEGV in
    // HandlerTable::LookupRange) unwinding the exception proc_exit throws, when fast API
    // calls had corrupted its heap (see the header); a return unwinds nothing. A module that
    // still calls proc_exit is unwound back to start(), which returns its status. (With
    // returnOnExit: false, node:wasi calls process.exit() from inside the guest's call, and
    // Node 20 then crashed now and then on exit after much output.)
    returnOnExit: true,
    stdin: 0,
    stdout: 1,
    stderr: 2,
  });

  let instance;
  try {
    instance = await WebAssembly.instantiate(module, jsImports(wasi.getImportObject()));
  } catch (e) {
    fail(`instantiating the module: ${e.message}`);
  }

  let status;
  try {
    status = wasi.start(instance);
    // The guest returned from _start (RVBOX_RETURN_STATUS) with its status recorded.
    const recorded = instance.exports.rvbox_exit_status?.() ?? -1;
    if (recorded >= 0) status = recorded;
  } catch (e) {
    // The emulator aborts (a trap) when its memory cannot grow; it says so.
    let failed = 0;
    try {
      failed = instance.exports.rvbox_alloc_failed?.() ?? 0;
    } catch {
      // an older module
    }
    if (failed > 0) {
      const mib = (n) => Math.floor(n / 2 ** 20);
      fail(
        cap === null
          ? `out of memory: the module's memory reached the ${mib(2 ** 32)} MiB a wasm32 module can have; the guest was stopped`
          : `out of memory: the module's memory reached its limit of ${mib(cap)} MiB (--memory ${mib(limit)} MiB, and room for rvbox's own data); the guest was stopped`,
        137,
      );
    }
    const msg = String(e?.message ?? e).split('\n')[0];
    fail(`guest trapped: ${msg}`);
  }
  process.exit(status ?? 0);
}

main().catch((e) => fail(String(e?.stack ?? e).split('\n')[0]));
