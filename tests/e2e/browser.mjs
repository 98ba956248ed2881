// Drives the page of `rvbox web` in headless Chromium with playwright-core, for
// tests/e2e/browser.rs:
//
//   node browser.mjs SPEC.json
//
// SPEC: {url, chromium, steps: [...], screenshot?}. A step is one of
//   {wait: REGEX, timeout?}               until the terminal's text matches
//   {type: TEXT, wait?: REGEX, timeout?}  keys to the terminal, then wait
//   {resize: [WIDTH, HEIGHT]}             the viewport; waits for the terminal to follow
//   {drop: {name, text}}                  a file dropped on the page (a real drop event)
//   {error: REGEX, timeout?}              until the page shows an error that matches
// spec.blockServiceWorkers: the browser refuses service workers.
// In a REGEX, ${rows} and ${cols} are the terminal's size as of the last step.
// Prints one JSON object: {ok, steps: [{ms, text?, pageMs?, rows, cols}], timings, error?};
// `text` is the terminal's text when a wait matched, `pageMs` when (ms since navigation). Exits 0 even when a step fails (the test
// says what went wrong from `error` and the text), 2 if Chromium cannot be started.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../runner/web/package.json'));
const { chromium } = require('playwright-core');

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = { ok: false, steps: [], timings: {}, console: [] };

let browser;
try {
  // A fresh profile in spec.userDataDir (Playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(spec.userDataDir, {
    executablePath: spec.chromium,
    headless: true,
    viewport: { width: 1000, height: 600 },
    serviceWorkers: spec.blockServiceWorkers ? 'block' : 'allow',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, launch: true, error: `cannot start ${spec.chromium}: ${e.message}` }));
  process.exit(2);
}

const page = browser.pages()[0] ?? await browser.newPage();
page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => out.console.push(`pageerror: ${e.message}`));

// Page reads that a navigation (the service worker's one reload) may interrupt: retried.
async function evaluate(fn, fallback) {
  try {
    return await page.evaluate(fn);
  } catch (e) {
    if (/context was destroyed|navigat/i.test(e.message)) return fallback;
    throw e;
  }
}
const size = () => evaluate(() => ({ rows: window.rvbox?.term?.rows, cols: window.rvbox?.term?.cols }), {});
const text = () => evaluate(() => window.rvbox?.text() ?? '', '');
let last = { rows: 0, cols: 0 };

async function waitFor(pattern, timeout) {
  const re = new RegExp(pattern.replaceAll('${rows}', last.rows).replaceAll('${cols}', last.cols));
  const end = Date.now() + timeout;
  for (;;) {
    const t = await text();
    if (re.test(t)) return t;
    const state = await evaluate(() => ({ state: window.rvbox?.state, error: window.rvbox?.error }), {});
    if (state.state === 'error') throw new Error(`the page shows an error: ${state.error}\n${t}`);
    if (Date.now() > end) throw new Error(`no match for /${re.source}/ in ${timeout} ms; the terminal shows:\n${t}`);
    await page.waitForTimeout(50);
  }
}

const t0 = Date.now();
try {
  await page.goto(spec.url);
  for (const step of spec.steps) {
    const started = Date.now();
    const r = {};
    if (step.type !== undefined) {
      await page.locator('.xterm-helper-textarea').focus();
      await page.keyboard.type(step.type);
    }
    if (step.resize) {
      const before = await size();
      await page.setViewportSize({ width: step.resize[0], height: step.resize[1] });
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        const s = await size();
        if (s.rows !== before.rows || s.cols !== before.cols) break;
        await page.waitForTimeout(50);
      }
    }
    if (step.drop) {
      await page.evaluate(({ name, text }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], name));
        document.getElementById('term').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, step.drop);
    }
    if (step.wait !== undefined) {
      r.text = await waitFor(step.wait, step.timeout ?? 60000);
      // When it matched, in ms since the page's navigation started.
      r.pageMs = await evaluate(() => performance.now(), null);
    }
    if (step.error !== undefined) {
      const re = new RegExp(step.error);
      const end = Date.now() + (step.timeout ?? 60000);
      for (;;) {
        const shown = await evaluate(() => document.getElementById('status')?.textContent ?? '', '');
        if (re.test(shown)) {
          r.text = shown;
          break;
        }
        if (Date.now() > end) throw new Error(`the page shows no error matching /${re.source}/: ${shown}`);
        await page.waitForTimeout(50);
      }
    }
    last = await size();
    Object.assign(r, last, { ms: Date.now() - started });
    out.steps.push(r);
  }
  out.timings = await page.evaluate(() => window.rvbox.timings);
  out.timings.total = Date.now() - t0;
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot });
  out.ok = true;
} catch (e) {
  out.error = e.message;
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot }).catch(() => {});
}
await browser.close();
process.stdout.write(JSON.stringify(out));
