// Starts a real `llmsync serve` for the JavaScript tests: a test model made with
// `llmsync model make-test`, a fresh data directory, a free loopback port.
//
// Environment: LLMSYNC_BIN (the llmsync binary; required), LLMSYNC_TEST_WORK (a scratch directory;
// default: a temporary one).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function llmsyncBin() {
  const bin = process.env.LLMSYNC_BIN;
  if (!bin) throw new Error('set LLMSYNC_BIN to the llmsync binary');
  return path.resolve(bin);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// Options: name (the scratch subdirectory), model (make-test flags; readable: the demo model's
// vocabulary of English words), config (a config object
// written to a file), extraArgs. Returns {url, proc, work, stop()}.
export async function startServer({ name = 'server', model = {}, config = null, extraArgs = [] } = {}) {
  const bin = llmsyncBin();
  const base = process.env.LLMSYNC_TEST_WORK ?? fs.mkdtempSync(path.join(os.tmpdir(), 'llmsync-js-'));
  const work = path.join(base, name);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const m = { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, seed: 7, ...model };
  const modelPath = path.join(work, 'model.gguf');
  execFileSync(bin, ['model', 'make-test', '--arch', 'llama', '--n-embd', String(m.nEmbd), '--n-layer',
    String(m.nLayer), '--n-head', String(m.nHead), '--n-head-kv', String(m.nHeadKv), '--n-ff', String(m.nFf),
    '--seed', String(m.seed), '--out', modelPath, ...(m.readable ? ['--readable-vocab'] : [])]);
  const port = await freePort();
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--model', modelPath, '--data-dir',
    path.join(work, 'data'), '--threads', '1', '--kv-ram-mb', '32', ...extraArgs];
  if (config) {
    const file = path.join(work, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config));
    args.push('--config', file);
  }
  const log = fs.openSync(path.join(work, 'serve.log'), 'w');
  const proc = spawn(bin, args, { stdio: ['ignore', log, log] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) {
        return {
          url, proc, work,
          stop: () => new Promise((resolve) => {
            if (proc.exitCode !== null) return resolve();
            proc.once('exit', () => resolve());
            proc.kill('SIGTERM');
          }),
        };
      }
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`llmsync serve did not come up: ${fs.readFileSync(path.join(work, 'serve.log'), 'utf8')}`);
}
