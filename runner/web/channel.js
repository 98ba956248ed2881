// The page -> worker channel: a ring of framed records in a SharedArrayBuffer.
//
// The worker runs the guest's _start, which returns only when the container ends, so it
// never gets back to its event loop: postMessage cannot reach it. Everything the page has
// for it (keys, window-size reports, dropped files) goes through this ring instead, and
// the worker blocks on it with Atomics.wait (a read of stdin, poll_oneoff) without
// spinning. One writer (the page), one reader (the worker).
//
// Layout: Int32 words [HEAD, TAIL, SEQ, unused], then CAPACITY bytes of data. HEAD and
// TAIL count bytes written and read (mod 2^32); a record is
//   type (u8), length (u32 LE), payload
// and is published whole (HEAD moves after its bytes are in), so the reader never sees
// half a record. SEQ changes on every publish: the reader waits on it.

export const CAPACITY = 1 << 20;
const HEAD = 0;
const TAIL = 1;
const SEQ = 2;
const DATA = 16;

export const STDIN = 1;      // payload: bytes typed (and window-size reports)
export const FILE_BEGIN = 2; // payload: JSON {name, size, mtime (ms since the epoch)}
export const FILE_DATA = 3;  // payload: the next bytes of that file
export const FILE_END = 4;   // payload: none

// The most payload one record carries (records must fit in the ring).
export const MAX_PAYLOAD = 64 * 1024;

export function newChannelBuffer() {
  return new SharedArrayBuffer(DATA + CAPACITY);
}

export class ChannelWriter {
  constructor(sab) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, DATA, CAPACITY);
  }

  // Publishes one record if there is room for it; returns whether it did.
  tryWrite(type, payload) {
    if (payload.length > MAX_PAYLOAD) throw new Error('record too large');
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const used = (head - tail) >>> 0;
    const need = 5 + payload.length;
    if (CAPACITY - used < need) return false;
    const hdr = new Uint8Array(5);
    hdr[0] = type;
    new DataView(hdr.buffer).setUint32(1, payload.length, true);
    this.put(head, hdr);
    this.put((head + 5) >>> 0, payload);
    Atomics.store(this.ctl, HEAD, (head + need) | 0);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    return true;
  }

  put(pos, bytes) {
    const at = pos % CAPACITY;
    const first = Math.min(bytes.length, CAPACITY - at);
    this.data.set(bytes.subarray(0, first), at);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
  }
}

export class ChannelReader {
  constructor(sab) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, DATA, CAPACITY);
  }

  // The change counter: read it before looking for records, then wait() on it.
  seq() {
    return Atomics.load(this.ctl, SEQ);
  }

  // Calls onRecord(type, payload) for every record published so far.
  drain(onRecord) {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let tail = Atomics.load(this.ctl, TAIL) >>> 0;
    while (tail !== head) {
      const hdr = this.get(tail, 5);
      const len = new DataView(hdr.buffer).getUint32(1, true);
      const payload = this.get((tail + 5) >>> 0, len);
      tail = (tail + 5 + len) >>> 0;
      Atomics.store(this.ctl, TAIL, tail | 0);
      onRecord(hdr[0], payload);
    }
  }

  get(pos, len) {
    const out = new Uint8Array(len);
    const at = pos % CAPACITY;
    const first = Math.min(len, CAPACITY - at);
    out.set(this.data.subarray(at, at + first), 0);
    if (first < len) out.set(this.data.subarray(0, len - first), first);
    return out;
  }

  // Blocks until SEQ differs from `seen` or `timeoutMs` passes (Infinity: no limit).
  wait(seen, timeoutMs) {
    Atomics.wait(this.ctl, SEQ, seen, timeoutMs);
  }
}
