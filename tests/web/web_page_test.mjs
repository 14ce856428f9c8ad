// The web page in a real browser: puppeteer-core drives Debian's chromium (headless) against a
// real `llmsync serve`. Send a message and see it stream; a second tab on the conversation URL
// shows the same reply live; a reload mid-stream resumes and the reply completes exactly once;
// stop cancels a run; an edit creates a branch and the ‹ 1/2 › switcher flips between them; a
// compacted session shows its summary as a labelled block, and both branches stay reachable. No
// page error, console error or failed request along the way. Screenshots of each step go to
// --work. Every wait is on a condition, with generous timeouts (the test machine may be loaded).
//
//   node web_page_test.mjs --llmsync BIN --npm-dir DIR --work DIR [--screenshot FILE]
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

function Arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback !== undefined) return fallback;
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}
const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));
const screenshotOut = Arg('--screenshot', '');
process.env.LLMSYNC_BIN = llmsync;
process.env.LLMSYNC_TEST_WORK = work;
const { startServer } = await import('../../clients/js/test/serve.mjs');

function findChromium() {
  for (const p of [process.env.CHROMIUM, '/usr/lib/chromium/chromium']) if (p && fs.existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}
const chromium = findChromium();
if (!chromium) {
  console.error('SKIP: chromium not found (scripts/setup.sh installs it)');
  process.exit(77);
}
const require = createRequire(path.join(npmDir, 'package.json'));
const puppeteer = require('puppeteer-core');

const kWait = { timeout: 180000, polling: 100 };
const t0 = Date.now();
const step = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);
// A DOM click: puppeteer's mouse click waits for the renderer, which a loaded machine can starve.
const press = (page, selector) => page.$eval(selector, (e) => e.click());
const problems = [];
let shot = 0;

function watch(page, name) {
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`);
  });
  const notModified = new WeakSet();
  page.on('requestfailed', (r) => {
    // A page that reloads or closes drops its open event streams: that is not a failure. Chrome
    // also reports a sync answered 304 (the client's own If-None-Match, fetched with cache:
    // 'no-store') as aborted, although the page received the 304.
    const aborted = r.failure()?.errorText === 'net::ERR_ABORTED' && (r.url().includes('/events') || notModified.has(r));
    if (!aborted) problems.push(`${name}: request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() === 304) notModified.add(r.request());
    if (r.status() >= 400) problems.push(`${name}: HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
}

async function snap(page, name) {
  await page.bringToFront();
  const file = path.join(work, `${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

const streamingText = (page) => page.$eval('#streaming .text', (e) => e.textContent).catch(() => null);

async function api(url, p, init) {
  const r = await fetch(url + p, init);
  assert.ok(r.ok, `${p}: ${r.status}`);
  return r.json();
}

const server = await startServer({ name: 'web', model: { nEmbd: 512, nLayer: 8, nHead: 8, nHeadKv: 4, nFf: 1536 } });
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  // Two tabs are open at once: a background tab must not have its timers and rendering
  // throttled (Chrome slows hidden pages' timers to once a minute), or every wait stalls.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
    '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows',
    '--disable-renderer-backgrounding', '--disable-features=IntensiveWakeUpThrottling'],
});
let failed = false;
try {
  // Assets: content types and the CSP.
  for (const [p, type] of [['/', 'text/html'], ['/assets/app.js', 'text/javascript'],
    ['/assets/style.css', 'text/css'], ['/assets/llmsync.js', 'text/javascript']]) {
    const r = await fetch(server.url + p);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    assert.match(r.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  }
  assert.equal((await fetch(`${server.url}/assets/nope.js`)).status, 404);
  assert.equal((await fetch(`${server.url}/c/nothex`)).status, 404);

  const a = await browser.newPage();
  await a.setViewport({ width: 1100, height: 760 });
  watch(a, 'tab A');
  await a.goto(server.url + '/', { waitUntil: 'load' });
  await a.evaluate(() => localStorage.setItem('llmsync.max_tokens', '600'));
  await a.reload({ waitUntil: 'load' });
  await a.waitForSelector('#input', kWait);

  step('1. send a message');
  // 1. Send with Enter; Shift+Enter is a new line in the composer.
  await a.type('#input', 'Hello');
  await a.keyboard.down('Shift');
  await a.keyboard.press('Enter');
  await a.keyboard.up('Shift');
  await a.type('#input', 'there');
  assert.equal(await a.$eval('#input', (e) => e.value), 'Hello\nthere');
  await a.keyboard.press('Enter');
  await a.waitForFunction(() => /^\/c\/[0-9a-f]{64}$/.test(location.pathname), kWait);
  const convUrl = a.url();
  const sessionId = convUrl.split('/c/')[1];
  await a.waitForFunction(() => (document.querySelector('#streaming .text')?.textContent.length ?? 0) > 10, kWait);
  const first = await streamingText(a);
  await a.waitForFunction((n) => (document.querySelector('#streaming .text')?.textContent.length ?? 0) > n, kWait,
    first.length);
  await snap(a, 'streaming');

  step('2. a second tab');
  // 2. A second tab on the conversation URL shows the same reply, live.
  const b = await browser.newPage();
  await b.setViewport({ width: 900, height: 700 });
  watch(b, 'tab B');
  await b.goto(convUrl, { waitUntil: 'load' });
  await b.waitForFunction(() => (document.querySelector('#streaming .text')?.textContent.length ?? 0) > 0, kWait);
  const runId = await b.$eval('#streaming', (e) => e.dataset.run);
  assert.equal(runId, await a.$eval('#streaming', (e) => e.dataset.run));
  await snap(b, 'second-tab');

  step('3. reload mid-reply');
  // 3. Reload tab A mid-reply: it reattaches and goes on. Every text the page shows is a prefix of
  // the final reply (nothing repeated), and the reply completes exactly once.
  const run0 = await api(server.url, `/v1/runs/${runId}`);
  assert.ok(['queued', 'running'].includes(run0.status), `the run already ${run0.status}: the model is too fast`);
  await a.reload({ waitUntil: 'load' });
  await a.waitForFunction(() => (document.querySelector('#streaming .text')?.textContent.length ?? 0) > 0, kWait);
  const seenA = [];
  const seenB = [];
  const sampler = setInterval(async () => {
    const [ta, tb] = await Promise.all([streamingText(a), streamingText(b)]);
    if (ta) seenA.push(ta);
    if (tb) seenB.push(tb);
  }, 100);
  await snap(a, 'reloaded');
  await a.waitForFunction(() => !document.querySelector('#streaming') &&
    document.querySelectorAll('#messages .msg.assistant').length === 1, kWait);
  await b.waitForFunction(() => !document.querySelector('#streaming') &&
    document.querySelectorAll('#messages .msg.assistant').length === 1, kWait);
  clearInterval(sampler);
  const run = await api(server.url, `/v1/runs/${runId}`);
  assert.equal(run.status, 'succeeded');
  const session = await api(server.url, `/v1/sessions/${sessionId}`);
  const reply = session.nodes.find((n) => n.id === run.node_id);
  const shownA = await a.$eval('#messages .msg.assistant .text', (e) => e.textContent);
  const shownB = await b.$eval('#messages .msg.assistant .text', (e) => e.textContent);
  assert.equal(shownA, reply.text, 'tab A shows the reply exactly once');
  assert.equal(shownB, reply.text, 'tab B shows the same reply');
  for (const t of seenA.concat(seenB)) assert.ok(reply.text.startsWith(t), 'a streamed text is a prefix of the reply');
  assert.ok(seenA.length > 0, 'tab A streamed after the reload');
  assert.equal(session.nodes.filter((n) => n.kind === 'assistant').length, 1);
  await a.waitForFunction(() => document.querySelector('#messages .msg.assistant .cost')?.textContent.includes('computed'),
    kWait);
  await snap(a, 'completed');

  step('4. stop');
  // 4. Stop cancels the run (tab B sees it end too).
  await a.evaluate(() => localStorage.setItem('llmsync.max_tokens', '400'));
  await a.type('#input', 'Tell me more');
  await a.keyboard.press('Enter');
  await a.waitForFunction(() => (document.querySelector('#streaming .text')?.textContent.length ?? 0) > 5, kWait);
  const stopRun = await a.$eval('#streaming', (e) => e.dataset.run);
  await press(a, '#stop');
  await a.waitForFunction(() => !document.querySelector('#streaming'), kWait);
  await b.waitForFunction(() => !document.querySelector('#streaming'), kWait);
  assert.equal((await api(server.url, `/v1/runs/${stopRun}`)).status, 'cancelled');
  assert.equal(await a.$eval('#stop', (e) => e.hidden), true);
  await snap(a, 'stopped');

  step('5. edit and switch');
  // 5. Edit the last user message: a branch; the switcher flips between the two versions.
  const users = await a.$$('#messages .msg.user');
  const last = users[users.length - 1];
  await last.$eval('button[aria-label="Edit this message"]', (e) => e.click());
  await a.waitForSelector('#messages .msg.user textarea', kWait);
  await a.$eval('#messages .msg.user textarea', (e) => { e.value = ''; });
  await a.type('#messages .msg.user textarea', 'Tell me less');
  await press(a, '#messages .msg.user .save-edit');
  await a.waitForFunction(() => document.querySelector('#streaming'), kWait);
  await press(a, '#stop');
  await a.waitForFunction(() => !document.querySelector('#streaming'), kWait);
  const lastUser = () => a.evaluate(() => {
    const all = document.querySelectorAll('#messages .msg.user');
    const m = all[all.length - 1];
    return { text: m.querySelector('.text').textContent, pos: m.querySelector('.position')?.textContent };
  });
  await a.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .msg.user');
    return all[all.length - 1]?.querySelector('.position')?.textContent === '2/2';
  }, kWait);
  assert.deepEqual(await lastUser(), { text: 'Tell me less', pos: '2/2' });
  await snap(a, 'edited');
  await a.evaluate(() => {
    const all = document.querySelectorAll('#messages .msg.user');
    all[all.length - 1].querySelector('button[aria-label="Previous version"]').click();
  });
  await a.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .msg.user');
    return all[all.length - 1]?.querySelector('.position')?.textContent === '1/2';
  }, kWait);
  assert.deepEqual(await lastUser(), { text: 'Tell me more', pos: '1/2' });
  // Tab B follows the head move.
  await b.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .msg.user');
    return all[all.length - 1]?.querySelector('.text')?.textContent === 'Tell me more';
  }, kWait);
  await snap(a, 'switched');

  // The tree view shows every branch.
  await press(a, '#toggle-panel');
  await press(a, '#tree-details summary');
  const treeItems = await a.$$eval('#tree button', (bs) => bs.map((x) => x.textContent));
  assert.ok(treeItems.some((t) => t.includes('Tell me more')) && treeItems.some((t) => t.includes('Tell me less')));
  const shotFile = await snap(a, 'tree');
  if (screenshotOut) fs.copyFileSync(shotFile, screenshotOut);

  step('6. compaction');
  // 6. Compact the session (issue 19): the head moves to a branch that starts with a summary of
  // the first turn; the page labels it and links back to the original turns, and back again.
  const compacted = await api(server.url, `/v1/sessions/${sessionId}/compact`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ context: { policy: 'auto' } }),
  });
  assert.equal(compacted.policy, 'auto');
  await a.waitForFunction(() => document.querySelector('#messages .msg.summary'), kWait);
  const label = await a.$eval('#messages .msg.summary .role', (e) => e.textContent);
  assert.match(label, /^summary · stands in for 1 earlier turn$/);
  assert.equal(await a.$$eval('#messages .msg.user', (ms) => ms.some((m) => m.textContent.includes('Hello'))), false);
  assert.ok((await a.$$eval('#tree button.summary', (bs) => bs.map((x) => x.textContent)))
    .some((t) => t.startsWith('summary (1 turns)')));
  await snap(a, 'compacted');
  await press(a, '#messages .msg.summary button[aria-label="Show the original branch"]');
  await a.waitForFunction(() => !document.querySelector('#messages .msg.summary') &&
    [...document.querySelectorAll('#messages .msg.user .text')].some((e) => e.textContent === 'Hello\nthere'), kWait);
  await a.waitForSelector('#messages button[aria-label="Show the compacted branch"]', kWait);
  await press(a, '#messages button[aria-label="Show the compacted branch"]');
  await a.waitForFunction(() => document.querySelector('#messages .msg.summary'), kWait);

  assert.deepEqual(problems, [], 'no page error, console error or failed request');
  console.log(`web page test passed; screenshots in ${work}`);
} catch (e) {
  failed = true;
  step('failed');
  for (const p of await browser.pages()) await snap(p, 'failure').catch(() => {});
  console.error(e);
  console.error(problems.join('\n'));
} finally {
  await browser.close().catch(() => {});
  await server.stop();
}
process.exit(failed ? 1 : 0);
