// Runs an rvbox module with browser_wasi_shim (WASI preview1) in a Web Worker.
//
// The page sends one message, {type: 'start', config, channel, rows, cols}; this worker
// fetches and compiles the module (streaming, reporting progress), then runs _start, which
// returns only when the container ends. From then on the page reaches us only through the
// channel (channel.js): stdin and dropped files. We post to the page:
//   {type: 'progress', loaded, total}, {type: 'compiling'}, {type: 'running'},
//   {type: 'out', data} (stdout and stderr, the terminal's output),
//   {type: 'exit', status}, {type: 'error', message} (a module that does not load or
//   traps, or a run that ends with 125 after the guest's own `rvbox: ...` line).
//
// What browser_wasi_shim does not give, done here:
// - fd 0 reads block (Atomics.wait on the channel) until the page sends input;
// - poll_oneoff takes any number of subscriptions: fd 0 (ready when input is queued), other
//   descriptors (always ready), clocks (the earliest deadline); it waits on the channel
//   until one is ready, never spinning;
// - files the page sends are added to the /mnt preopen while the guest runs (the guest
//   asks the host for a volume's entries at every lookup, so it sees them at once).

import {
  WASI, WASIProcExit, Fd, File, PreopenDirectory, wasi,
} from './vendor/browser_wasi_shim/index.js';
import {
  ChannelReader, STDIN, FILE_BEGIN, FILE_DATA, FILE_END,
} from './channel.js';

// browser_wasi_shim 0.4.2 writes a filestat's times at offsets 38, 46 and 52, over the top
// bytes of the size and over each other; WASI preview1 has them at 40, 48 and 56.
wasi.Filestat.prototype.write_bytes = function writeFilestat(view, ptr) {
  view.setBigUint64(ptr, this.dev, true);
  view.setBigUint64(ptr + 8, this.ino, true);
  view.setUint8(ptr + 16, this.filetype);
  view.setBigUint64(ptr + 24, this.nlink, true);
  view.setBigUint64(ptr + 32, this.size, true);
  view.setBigUint64(ptr + 40, this.atim, true);
  view.setBigUint64(ptr + 48, this.mtim, true);
  view.setBigUint64(ptr + 56, this.ctim, true);
};

// A file copied in from the page: one link (the shim says 0), its times the file's.
class DroppedFile extends File {
  constructor(data, mtimeMs) {
    super(data);
    this.time = BigInt(Math.round(mtimeMs)) * 1000000n;
  }
  stat() {
    const s = super.stat();
    s.nlink = 1n;
    s.atim = this.time;
    s.mtim = this.time;
    s.ctim = this.time;
    return s;
  }
}

// Must match converter/src/meta.rs.
const SECTION = 'rvbox';
const FORMAT = 1;

const post = (m, transfer) => self.postMessage(m, transfer ?? []);

self.onmessage = (e) => {
  if (e.data?.type !== 'start') return;
  start(e.data).catch((err) => post({ type: 'error', message: String(err?.message ?? err) }));
};

// Input queued for fd 0, and the channel it comes from.
class Input {
  constructor(channel, mnt) {
    this.channel = channel;
    this.mnt = mnt;
    this.chunks = [];
    this.queued = 0;
    this.file = null;
  }

  // Takes in what the page has published.
  drain() {
    this.channel.drain((type, payload) => {
      switch (type) {
        case STDIN:
          this.chunks.push(payload);
          this.queued += payload.length;
          break;
        case FILE_BEGIN: {
          const { name, size, mtime } = JSON.parse(new TextDecoder().decode(payload));
          this.file = { name, mtime: mtime ?? Date.now(), data: new Uint8Array(size), at: 0 };
          break;
        }
        case FILE_DATA:
          if (this.file) {
            this.file.data.set(payload, this.file.at);
            this.file.at += payload.length;
          }
          break;
        case FILE_END:
          if (this.file) {
            this.mnt.dir.contents.set(this.file.name, new DroppedFile(this.file.data, this.file.mtime));
            this.file = null;
          }
          break;
        default:
          break;
      }
    });
  }

  // Takes up to `n` queued bytes.
  take(n) {
    const out = new Uint8Array(Math.min(n, this.queued));
    let at = 0;
    while (at < out.length) {
      const c = this.chunks[0];
      const k = Math.min(c.length, out.length - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.queued -= out.length;
    return out;
  }

  // Blocks until input is queued (or `deadlineMs`, a performance.now() time, passes).
  // Returns whether input is queued.
  waitInput(deadlineMs = Infinity) {
    for (;;) {
      const seen = this.channel.seq();
      this.drain();
      if (this.queued > 0) return true;
      const left = deadlineMs - performance.now();
      if (left <= 0) return false;
      this.channel.wait(seen, left);
    }
  }
}

// fd 0: the terminal's input, from the page's keys. A character device, as a tty is.
class Stdin extends Fd {
  constructor(input) {
    super();
    this.input = input;
  }
  fd_fdstat_get() {
    return { ret: 0, fdstat: new wasi.Fdstat(wasi.FILETYPE_CHARACTER_DEVICE, 0) };
  }
  fd_read(size) {
    this.input.waitInput();
    return { ret: 0, data: this.input.take(size) };
  }
}

// fd 1 and 2: to the page's terminal. With `keepTail` (stderr) it keeps the last line
// written: the page shows the guest's own `rvbox: ...` message as its error when the run
// ends with 125. stdout, the busy one, decodes nothing.
class Output extends Fd {
  constructor(keepTail = false) {
    super();
    this.decoder = keepTail ? new TextDecoder() : null;
    this.tail = '';
  }
  fd_fdstat_get() {
    return { ret: 0, fdstat: new wasi.Fdstat(wasi.FILETYPE_CHARACTER_DEVICE, 0) };
  }
  fd_write(data) {
    const copy = data.slice();
    if (this.decoder) {
      this.tail = (this.tail + this.decoder.decode(copy.subarray(Math.max(0, copy.length - 4096))))
        .slice(-4096);
    }
    post({ type: 'out', data: copy }, [copy.buffer]);
    return { ret: 0, nwritten: data.byteLength };
  }
  // The last non-empty line written.
  lastLine() {
    return this.tail.split('\n').map((l) => l.trim()).filter((l) => l).pop() ?? '';
  }
}

// rvbox's own failures end a run with this status (docker's convention), after one
// `rvbox: ...` line on stderr (a damaged module, a host that lacks what it needs).
const RVBOX_FAILURE = 125;

// poll_oneoff(in, out, nsubscriptions, nevents) over the subscriptions' records
// (wasi_snapshot_preview1: subscription 48 bytes, event 32 bytes).
function pollOneoff(memory, input, inPtr, outPtr, nsubs, neventsPtr) {
  if (nsubs === 0) return wasi.ERRNO_INVAL;
  const view = new DataView(memory.buffer);
  const subs = [];
  let deadline = Infinity; // performance.now() ms
  const nowMs = performance.now();
  for (let i = 0; i < nsubs; i++) {
    const p = inPtr + i * 48;
    const s = {
      userdata: view.getBigUint64(p, true),
      tag: view.getUint8(p + 8),
    };
    if (s.tag === wasi.EVENTTYPE_CLOCK) {
      const id = view.getUint32(p + 16, true);
      const timeout = view.getBigUint64(p + 24, true);
      const abs = (view.getUint16(p + 40, true) & wasi.SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) !== 0;
      let at;
      if (!abs) at = nowMs + Number(timeout) / 1e6;
      else if (id === wasi.CLOCKID_REALTIME) at = nowMs + (Number(timeout) / 1e6 - Date.now());
      else at = Number(timeout) / 1e6; // monotonic: performance.now() in ns, as clock_time_get
      s.at = at;
      deadline = Math.min(deadline, at);
    } else {
      s.fd = view.getUint32(p + 16, true);
    }
    subs.push(s);
  }
  const ready = (s) => s.tag !== wasi.EVENTTYPE_CLOCK && (s.fd !== 0 || input.queued > 0);
  if (!subs.some(ready)) input.waitInput(deadline);
  // Events: every ready descriptor; clocks whose time has come if none is.
  const events = [];
  const now = performance.now();
  for (const s of subs) {
    if (ready(s)) events.push(s);
  }
  if (events.length === 0) {
    for (const s of subs) if (s.tag === wasi.EVENTTYPE_CLOCK && s.at <= now) events.push(s);
  }
  events.forEach((s, i) => {
    const p = outPtr + i * 32;
    for (let b = 0; b < 32; b++) view.setUint8(p + b, 0);
    view.setBigUint64(p, s.userdata, true);
    view.setUint16(p + 8, 0, true);
    view.setUint8(p + 10, s.tag);
    if (s.tag !== wasi.EVENTTYPE_CLOCK) {
      view.setBigUint64(p + 16, BigInt(s.fd === 0 ? input.queued : 1), true);
    }
  });
  view.setUint32(neventsPtr, events.length, true);
  return wasi.ERRNO_SUCCESS;
}

async function compile(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || 0;
  let loaded = 0;
  let last = 0;
  post({ type: 'progress', loaded, total });
  const counted = res.body.pipeThrough(new TransformStream({
    transform(chunk, ctl) {
      loaded += chunk.length;
      const t = performance.now();
      if (t - last > 100) {
        last = t;
        post({ type: 'progress', loaded, total });
      }
      ctl.enqueue(chunk);
    },
    flush() {
      post({ type: 'progress', loaded, total: total || loaded });
      post({ type: 'compiling' });
    },
  }));
  // Streaming compilation: the module compiles while it downloads.
  try {
    return await WebAssembly.compileStreaming(new Response(counted, {
      headers: { 'Content-Type': 'application/wasm' },
    }));
  } catch (e) {
    if (total && loaded < total) {
      throw new Error(`${url}: the download was cut short (${loaded} of ${total} bytes)`);
    }
    throw new Error(`${url} (${loaded} bytes) is not a whole WebAssembly module, cut short or damaged: ${e.message}`);
  }
}

async function start({ config, channel, rows, cols }) {
  const module = await compile(config.module);
  const sections = WebAssembly.Module.customSections(module, SECTION);
  if (sections.length === 0) throw new Error(`${config.module} is not an rvbox module (no rvbox section)`);
  let meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(sections[0]));
  } catch (e) {
    throw new Error(`${config.module}: damaged module: its rvbox section is not JSON (${e.message})`);
  }
  if (meta.format !== FORMAT) {
    throw new Error(`${config.module}: made by an incompatible rvbox (module format ${meta.format}, this page reads ${FORMAT})`);
  }

  const mnt = new PreopenDirectory('/mnt', new Map());
  const dirStat = mnt.dir.stat.bind(mnt.dir);
  mnt.dir.stat = () => Object.assign(dirStat(), { nlink: 2n });
  const input = new Input(new ChannelReader(channel), mnt);
  // The page's terminal: the guest runs its line discipline on it (RVBOX_TTY), learns its
  // size from LINES/COLUMNS and its changes from in-band reports (RVBOX_TTY_RESIZE).
  const env = {
    TERM: 'xterm-256color',
    ...config.env,
    RVBOX_TTY: '1',
    RVBOX_TTY_RESIZE: '1',
    LINES: String(rows),
    COLUMNS: String(cols),
    RVBOX_RETURN_STATUS: '1',
  };
  const stderr = new Output(true);
  const w = new WASI(
    [config.module, ...(config.args ?? [])],
    Object.entries(env).map(([k, v]) => `${k}=${v}`),
    [new Stdin(input), new Output(), stderr, mnt],
    { debug: false },
  );
  let instance;
  w.wasiImport.poll_oneoff = (inPtr, outPtr, nsubs, neventsPtr) =>
    pollOneoff(instance.exports.memory, input, inPtr, outPtr, nsubs, neventsPtr);
  w.wasiImport.sched_yield = () => 0;
  instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: w.wasiImport });
  post({ type: 'running' });
  let status;
  try {
    status = w.start(instance);
    // The guest returned from _start (RVBOX_RETURN_STATUS) with its status recorded.
    const recorded = instance.exports.rvbox_exit_status?.() ?? -1;
    if (recorded >= 0) status = recorded;
  } catch (err) {
    if (err instanceof WASIProcExit) status = err.code;
    else throw new Error(`the module trapped: ${err?.message ?? err}`);
  }
  const said = stderr.lastLine();
  if (status === RVBOX_FAILURE && said.startsWith('rvbox: ')) {
    post({ type: 'error', message: said.slice('rvbox: '.length) });
    return;
  }
  post({ type: 'exit', status });
}
