// Takes the README's screenshot of the web page (docs/img/web.png): a real server with the demo
// model's readable vocabulary, a short conversation with an edited (branched) message, the cost
// line and the tree view open.
//
//   node tests/web/screenshot.mjs --llmsync BIN --npm-dir DIR --work DIR --out docs/img/web.png
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

function Arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}
process.env.LLMSYNC_BIN = path.resolve(Arg('--llmsync'));
process.env.LLMSYNC_TEST_WORK = path.resolve(Arg('--work'));
const out = path.resolve(Arg('--out'));
const { startServer } = await import('../../clients/js/test/serve.mjs');
const require = createRequire(path.join(path.resolve(Arg('--npm-dir')), 'package.json'));
const puppeteer = require('puppeteer-core');

const wait = { timeout: 180000, polling: 100 };
const server = await startServer({ name: 'screenshot', model: { nEmbd: 64, nLayer: 2, readable: true, seed: 11 } });
const browser = await puppeteer.launch({ executablePath: fs.existsSync('/usr/lib/chromium/chromium')
  ? '/usr/lib/chromium/chromium' : 'chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });

try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800, deviceScaleFactor: 1 });
  await page.goto(server.url + '/', { waitUntil: 'load' });
  await page.evaluate(() => localStorage.setItem('llmsync.max_tokens', '40'));
  await page.reload({ waitUntil: 'load' });
  // The readable vocabulary has an end token, so a reply may end before it is seen streaming:
  // wait for the finished replies instead.
  const replies = (n) => page.waitForFunction((k) => !document.querySelector('#streaming') &&
    document.querySelectorAll('#messages .msg.assistant').length === k, wait, n);
  let count = 0;
  const turn = async (text) => {
    await page.type('#input', text);
    await page.keyboard.press('Enter');
    await replies(++count);
  };
  await turn('What does llmsync keep between turns?');
  await turn('And what happens when I reload the page?');
  const users = await page.$$('#messages .msg.user');
  await (await users[1].$('button[aria-label="Edit this message"]')).click();
  await page.waitForSelector('#messages .msg.user textarea', wait);
  await page.$eval('#messages .msg.user textarea', (e) => { e.value = ''; });
  await page.type('#messages .msg.user textarea', 'And if the network drops mid-reply?');
  await page.click('#messages .msg.user .save-edit');
  await page.waitForFunction(() => document.querySelector('#messages .msg.user .position')?.textContent === '2/2', wait);
  await replies(2);
  await page.waitForFunction(() => [...document.querySelectorAll('#conversations a')].some((a) => !a.textContent.startsWith('Chat ')), wait)
    .catch(() => {});
  await page.click('#toggle-panel');
  await page.click('#tree-details summary');
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
