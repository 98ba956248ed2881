#!/usr/bin/env -S node --single-threaded-gc --no-flush-bytecode
// Runs an rvbox module under Node's node:wasi (WASI preview1).
//
//   node runner/node/run.mjs [-e KEY=VALUE]... [-v HOST:GUEST[:ro]]... MODULE.wasm [ARGS...]
//
// The guest gets ARGS after argv[0] (the module's file name), only the environment given
// with -e (the host environment does not leak in, as with `docker run`), this process's
// stdin/stdout/stderr, and as preopened directories the volumes given with -v (named by
// their path in the container; `:ro` is enforced by the guest, told by RVBOX_READONLY,
// as node:wasi itself cannot refuse writes). Exits with the guest's exit status;
// with 125 after a one-line `rvbox: ...` message if the module is not an rvbox module,
// cannot be loaded, or traps.

import { readFileSync, realpathSync, statSync, writeSync } from 'node:fs';
import { basename } from 'node:path';

// Node 20's V8 has crashed running this emulator when its GC uses helper threads: a run of
// many small WASI calls (sqlite3 reading a script of INSERTs) died in GC ("Check failed:
// marking_state_->GreyToBlack(object)", or SIGSEGV), now and then on an idle machine, often
// on a loaded one. And it has crashed (SIGSEGV in HandlerTable::LookupRange) unwinding
// proc_exit after a run of some seconds: by then V8 has flushed the bytecode of the JS
// frames under the guest's long call (wasi.start), which the unwinding walks. Run it as
// `node --single-threaded-gc --no-flush-bytecode run.mjs` (the #! line, bench/ and the
// tests do). (Setting V8 flags from here, after start-up, is itself unsafe.)

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
  fail('usage: node run.mjs [-e KEY=VALUE]... [-v HOST:GUEST[:ro]]... MODULE.wasm [ARGS...]', 2);
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

function parseArgs(argv) {
  const env = {};
  const volumes = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a === '-e' || a === '--env') {
      const kv = argv[i + 1];
      if (kv === undefined) usage();
      const eq = kv.indexOf('=');
      if (eq <= 0) fail(`invalid environment variable ${JSON.stringify(kv)}: expected KEY=VALUE`, 2);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
      i += 2;
    } else if (a.startsWith('--env=')) {
      const kv = a.slice('--env='.length);
      const eq = kv.indexOf('=');
      if (eq <= 0) fail(`invalid environment variable ${JSON.stringify(kv)}: expected KEY=VALUE`, 2);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
      i++;
    } else if (a === '-v' || a === '--volume') {
      if (argv[i + 1] === undefined) usage();
      volumes.push(parseVolume(argv[i + 1]));
      i += 2;
    } else if (a.startsWith('--volume=')) {
      volumes.push(parseVolume(a.slice('--volume='.length)));
      i++;
    } else if (a === '-h' || a === '--help') {
      usage();
    } else {
      break;
    }
  }
  if (i >= argv.length) usage();
  const preopens = {};
  for (const v of volumes) {
    if (v.guest in preopens) fail(`two volumes at ${v.guest} in the container`);
    preopens[v.guest] = v.host;
  }
  const ro = volumes.filter((v) => v.readOnly).map((v) => v.guest);
  if (ro.length > 0) env.RVBOX_READONLY = ro.join(',');
  return { module: argv[i], args: argv.slice(i + 1), env, preopens };
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
    // proc_exit unwinds the guest back to start(), which returns its status. (With
    // returnOnExit: false, node:wasi calls process.exit() from inside the guest's call, and
    // Node 20 then crashed now and then on exit after much output.)
    returnOnExit: true,
    stdin: 0,
    stdout: 1,
    stderr: 2,
  });

  let instance;
  try {
    instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  } catch (e) {
    fail(`instantiating the module: ${e.message}`);
  }

  let status;
  try {
    status = wasi.start(instance);
  } catch (e) {
    const msg = String(e?.message ?? e).split('\n')[0];
    fail(`guest trapped: ${msg}`);
  }
  process.exit(status ?? 0);
}

main().catch((e) => fail(String(e?.stack ?? e).split('\n')[0]));
