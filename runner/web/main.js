// The page: an xterm.js terminal wired to a worker that runs the module (worker.js).
//
// Keys go to the worker raw (the guest runs its own line discipline: echo, editing, ^C),
// through the SharedArrayBuffer channel (channel.js). The terminal's size goes to the guest
// as LINES/COLUMNS at start and, on every change, as an in-band report
// `ESC _ rvbox:winsize;ROWS;COLS ESC \` in its input, which the guest takes out and turns
// into SIGWINCH (emulator-guest/src/linux/tty.rs, ResizeFilter). Files dropped on the page
// (or chosen with the file input) are sent to the worker, which adds them to /mnt.
//
// SharedArrayBuffer needs cross-origin isolation (COOP/COEP headers): `rvbox serve` sends
// them; on any other static host sw.js adds them, after one reload.
//
// window.rvbox is for tests and curious users: text() is the terminal's text, state the
// page's state ('loading', 'running', 'exited', 'error'), status the guest's exit status.

import {
  newChannelBuffer, ChannelWriter, STDIN, FILE_BEGIN, FILE_DATA, FILE_END, MAX_PAYLOAD,
} from './channel.js';

const statusEl = document.getElementById('status');
const progressEl = document.getElementById('progress');
const api = { state: 'loading', status: null, text, sendFiles, term: null, timings: {} };
window.rvbox = api;
api.timings.start = performance.now();

function show(msg, kind = '') {
  statusEl.textContent = msg;
  statusEl.className = kind;
}

function fail(msg) {
  api.state = 'error';
  api.error = msg;
  progressEl.style.display = 'none';
  show(`Error: ${msg}`, 'error');
}

const mib = (n) => (n / 1048576).toFixed(1);

// Cross-origin isolation: without it there is no SharedArrayBuffer. A service worker
// (sw.js) can add the headers to every response of this site; it takes effect after a
// reload, tried once per session.
async function isolate() {
  if (self.crossOriginIsolated) return true;
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return false;
  const key = 'rvbox-coi-reloaded';
  if (sessionStorage.getItem(key)) return false;
  show('Installing the service worker for cross-origin isolation…');
  try {
    await navigator.serviceWorker.register(new URL('sw.js', location.href));
    // A browser may accept the worker and never run it (service workers turned off).
    const timeout = new Promise((_, reject) => {
      setTimeout(() => reject(new Error('timed out')), 10000);
    });
    await Promise.race([navigator.serviceWorker.ready, timeout]);
  } catch (e) {
    console.warn(`rvbox: no service worker: ${e.message}`);
    return false;
  }
  sessionStorage.setItem(key, '1');
  location.reload();
  return new Promise(() => {}); // the reload ends this page
}

function text() {
  const t = api.term;
  if (!t) return '';
  const b = t.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  return lines.join('\n').replace(/\n+$/, '');
}

// Bytes for the worker, queued while the ring is full (the guest is not reading).
const pending = [];
let writer = null;
let flushTimer = null;

function send(type, payload) {
  pending.push([type, payload]);
  flush();
}

function flush() {
  while (pending.length && writer.tryWrite(pending[0][0], pending[0][1])) pending.shift();
  if (pending.length && !flushTimer) {
    flushTimer = setTimeout(() => {
      flushTimer = null;
      flush();
    }, 10);
  }
}

const encoder = new TextEncoder();

function sendInput(bytes) {
  // Typed ahead while loading, the keys wait; after the end, nobody would read them.
  if (api.state === 'exited' || api.state === 'error') return;
  for (let i = 0; i < bytes.length; i += MAX_PAYLOAD) send(STDIN, bytes.subarray(i, i + MAX_PAYLOAD));
}

// Copies files to /mnt in the guest. Returns when they are queued for the worker.
async function sendFiles(files) {
  for (const f of files) {
    const name = f.name.replace(/[/\\]/g, '_');
    if (!name || name === '.' || name === '..') continue;
    const data = new Uint8Array(await f.arrayBuffer());
    send(FILE_BEGIN, encoder.encode(JSON.stringify({ name, size: data.length, mtime: f.lastModified })));
    for (let i = 0; i < data.length; i += MAX_PAYLOAD) send(FILE_DATA, data.subarray(i, i + MAX_PAYLOAD));
    send(FILE_END, new Uint8Array(0));
    show(`Copied ${name} (${data.length} bytes) to /mnt/${name}`);
  }
}

async function main() {
  if (!(await isolate()) || typeof SharedArrayBuffer === 'undefined') {
    fail('this page needs SharedArrayBuffer, which browsers give only to cross-origin isolated '
      + 'pages: serve it with the headers Cross-Origin-Opener-Policy: same-origin and '
      + 'Cross-Origin-Embedder-Policy: require-corp (`rvbox serve` does), or over https or '
      + 'localhost so that its service worker can add them.');
    return;
  }
  let config;
  try {
    const r = await fetch('rvbox.json');
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    config = await r.json();
  } catch (e) {
    fail(`cannot load rvbox.json: ${e.message}`);
    return;
  }
  document.title = config.title || 'rvbox';
  document.getElementById('title').textContent = config.title || 'rvbox';

  const TerminalClass = window.Terminal?.Terminal ?? window.Terminal;
  const term = new TerminalClass({
    cursorBlink: true, scrollback: 5000, theme: { background: '#1e1e1e' },
  });
  api.term = term;
  const fit = new (window.FitAddon.FitAddon ?? window.FitAddon)();
  term.loadAddon(fit);
  term.open(document.getElementById('term'));
  fit.fit();
  term.focus();

  const sab = newChannelBuffer();
  writer = new ChannelWriter(sab);
  const worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  const decoder = new TextDecoder();
  worker.onmessage = (e) => {
    const m = e.data;
    switch (m.type) {
      case 'progress':
        progressEl.style.display = '';
        progressEl.max = m.total || 1;
        progressEl.value = m.loaded;
        show(m.total ? `Downloading ${mib(m.loaded)} / ${mib(m.total)} MiB`
          : `Downloading ${mib(m.loaded)} MiB`);
        break;
      case 'compiling':
        api.timings.downloaded = performance.now();
        progressEl.removeAttribute('value');
        show('Compiling…');
        break;
      case 'running':
        api.timings.running = performance.now();
        api.state = 'running';
        progressEl.style.display = 'none';
        show('Running. Drop files on the page to copy them to /mnt.');
        break;
      case 'out':
        if (api.timings.firstOutput === undefined) api.timings.firstOutput = performance.now();
        term.write(m.data);
        break;
      case 'exit':
        api.state = 'exited';
        api.status = m.status;
        show(`The container exited with status ${m.status}.`, 'done');
        term.write(`\r\n[exited with status ${m.status}]\r\n`);
        break;
      case 'error':
        fail(m.message);
        break;
      default:
        break;
    }
  };
  worker.onerror = (e) => fail(`the worker failed: ${e.message || 'could not load worker.js'}`);

  term.onData((d) => sendInput(encoder.encode(d)));
  term.onBinary((d) => sendInput(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
  term.onResize(({ rows, cols }) => {
    sendInput(encoder.encode(`\x1b_rvbox:winsize;${rows};${cols}\x1b\\`));
  });
  new ResizeObserver(() => fit.fit()).observe(document.getElementById('term'));

  document.getElementById('files').addEventListener('change', (e) => {
    sendFiles([...e.target.files]);
    e.target.value = '';
    term.focus();
  });
  let depth = 0;
  addEventListener('dragenter', (e) => {
    e.preventDefault();
    depth++;
    document.body.classList.add('dragging');
  });
  addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      document.body.classList.remove('dragging');
    }
  });
  addEventListener('dragover', (e) => e.preventDefault());
  addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    sendFiles([...(e.dataTransfer?.files ?? [])]);
    term.focus();
  });

  worker.postMessage({ type: 'start', config, channel: sab, rows: term.rows, cols: term.cols });
}

main().catch((e) => fail(e?.message ?? String(e)));
