// What the Node client tests share: their command-line arguments, the npm directory the fixtures
// installed the clients into, and a real `llmsync serve` process on a free loopback port, serving
// a make-test model from a fresh directory.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

// The value after `name` on the command line; `fallback` when it is absent (an error without one).
export function Arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback !== undefined) return fallback;
    throw new Error(`missing ${name}`);
  }
  return process.argv[i + 1];
}

// require() resolving packages from the npm directory (the openai / ai fixtures install there).
export function NpmRequire(npmDir) {
  return createRequire(path.join(npmDir, 'package.json'));
}

export function FreePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// The tiny llama the tests serve unless they ask for another shape.
export const kTinyLlama = ['--arch', 'llama', '--n-embd', '64', '--n-layer', '2', '--n-head', '4',
  '--n-head-kv', '2', '--n-ff', '128', '--seed', '7'];

// Empties `dir`, makes its model with `llmsync model make-test ...makeArgs`, starts `llmsync serve`
// there on one thread, and resolves to {proc, port, logPath} once /healthz answers (the process is
// killed and an error thrown when it does not within 30 s).
export async function StartServe(llmsync, dir, { makeArgs = kTinyLlama, kvRamMb = 64 } = {}) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const model = path.join(dir, 'model.gguf');
  execFileSync(llmsync, ['model', 'make-test', ...makeArgs, '--out', model]);
  const port = await FreePort();
  const logPath = path.join(dir, 'serve.log');
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(llmsync, ['serve', '--listen', `127.0.0.1:${port}`, '--model', model,
    '--data-dir', path.join(dir, 'data'), '--threads', '1', '--kv-ram-mb', String(kvRamMb)],
    { stdio: ['ignore', log, log] });
  for (let i = 0; i < 1500; ++i) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return { proc, port, logPath };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  proc.kill('SIGKILL');
  throw new Error('llmsync serve did not come up; see ' + logPath);
}
