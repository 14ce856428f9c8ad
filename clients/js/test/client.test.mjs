// The JavaScript client against a real `llmsync serve` (see serve.mjs): session replicas synced
// with since=/ETag, idempotent and compare-and-swap appends, runs streamed and resumed from the
// last event id after a dropped connection, cancel, the session event feed, metadata, leases and
// export, and the SSE parser on hostile chunking.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client, LlmsyncError, parseSse } from '../llmsync.js';
import { startServer } from './serve.mjs';

let server;
let client;

before(async () => {
  server = await startServer({ name: 'client' });
  client = new Client({ baseUrl: server.url, initialBackoffMs: 20 });
});
after(async () => server?.stop());

function streamOf(chunks) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

async function collect(it) {
  const out = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('parseSse', () => {
  test('splits events across any chunking and line ending', async () => {
    const text = 'id: 1\nevent: token\ndata: {"a":1}\n\n: comment\r\nid: 2\r\nevent: x\r\ndata: l1\r\ndata: l2\r\n\r\n' +
      'data: plain\r\r';
    for (const size of [1, 2, 3, 7, 1000]) {
      const chunks = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      const events = await collect(parseSse(streamOf(chunks)));
      assert.deepEqual(events, [
        { id: '1', event: 'token', data: '{"a":1}' },
        { id: '2', event: 'x', data: 'l1\nl2' },
        { id: '2', event: 'message', data: 'plain' },
      ], `chunk size ${size}`);
    }
  });

  test('keeps multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: héllo ✓\n\n');
    const stream = new ReadableStream({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    const [ev] = await collect(parseSse(stream));
    assert.equal(ev.data, 'héllo ✓');
  });
});

describe('sessions', () => {
  test('a replica syncs with since= and the ETag, and ids stay strings', async () => {
    const s = await client.createSession();
    assert.match(s.id, /^[0-9a-f]{64}$/);
    const r = await s.append(null, [{ kind: 'system', text: 'Be brief.' }, { kind: 'user', text: 'Hi' }]);
    assert.equal(r.nodes.length, 2);
    assert.equal(typeof r.head, 'string');

    const replica = client.session(s.id);
    const added = await replica.sync();
    assert.equal(added.length, 2);
    assert.equal(replica.head, r.head);
    assert.equal(replica.seq, '2');
    assert.deepEqual(replica.pathTo(replica.head).map((n) => n.text), ['Be brief.', 'Hi']);
    // Nothing new: a 304, and nothing added.
    assert.deepEqual(await replica.sync(), []);
    await s.append(r.head, [{ kind: 'assistant', text: 'Hello.' }]);
    const more = await replica.sync();
    assert.deepEqual(more.map((n) => n.text), ['Hello.']);
    assert.equal(replica.seq, '3');
  });

  test('appends replay with their idempotency key and refuse a moved head', async () => {
    const s = await client.createSession();
    const first = await s.append(null, [{ kind: 'user', text: 'once' }], { idempotencyKey: 'k1' });
    const again = await s.append(null, [{ kind: 'user', text: 'once' }], { idempotencyKey: 'k1' });
    assert.equal(again.replayed, true);
    assert.equal(again.head, first.head);
    await assert.rejects(s.append(null, [{ kind: 'user', text: 'other' }], { idempotencyKey: 'k1' }),
      (e) => e instanceof LlmsyncError && e.status === 409);
    const ok = await s.append(first.head, [{ kind: 'assistant', text: 'y' }], { expectHead: first.head });
    assert.notEqual(ok.head, first.head);
    // The head moved on: a compare-and-swap against the old one is refused and names the new one.
    await assert.rejects(s.append(first.head, [{ kind: 'assistant', text: 'z' }], { expectHead: first.head }),
      (e) => e instanceof LlmsyncError && e.status === 409 && e.body.head === ok.head);
  });

  test('bad input is a 4xx LlmsyncError', async () => {
    await assert.rejects(client.request('GET', '/v1/sessions/nothex'), (e) => e.status === 400);
    await assert.rejects(client.session('0'.repeat(64)).sync(), (e) => e.status === 404 && e.code === 'not_found');
    await assert.rejects(client.listSessions({ limit: 0 }), (e) => e.status === 400);
  });

  test('metadata is set with PATCH and listed', async () => {
    const s = await client.createSession();
    const r = await s.setMetadata({ title: 'Greetings' });
    assert.deepEqual(r.metadata, { title: 'Greetings' });
    const list = await client.listSessions({ limit: 50 });
    const mine = list.find((x) => x.id === s.id);
    assert.deepEqual(mine.metadata, { title: 'Greetings' });
    assert.equal(typeof mine.created_at, 'number');
    await assert.rejects(s.setMetadata({ title: 'x'.repeat(17000) }), (e) => e.status === 400);
    await assert.rejects(client.request('PATCH', `/v1/sessions/${s.id}`, { body: { metadata: 'no' } }),
      (e) => e.status === 400);
  });

  test('export as JSON Lines and Markdown, and a lease', async () => {
    const s = await client.createSession();
    const r = await s.append(null, [{ kind: 'user', text: 'Export me' }]);
    const jsonl = await s.export();
    const lines = jsonl.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2);
    assert.ok(lines.some((l) => l.text === 'Export me'));
    const md = await s.export({ format: 'markdown' });
    assert.match(md, /Export me/);
    const lease = await s.lease(r.head, 30);
    assert.equal(lease.node, r.head);
    const released = await s.releaseLease(lease.lease_id);
    assert.equal(String(released.released), String(lease.lease_id));
  });
});

describe('runs', () => {
  test('a run streams every token once and its node lands in the replica', async () => {
    const s = await client.createSession();
    const r = await s.append(null, [{ kind: 'user', text: 'Tell me a story.' }]);
    const runId = await s.startRun({ max_tokens: 24, seed: 1 });
    let streamed = '';
    const result = await s.follow(runId, { onToken: (t) => { streamed += t; } });
    assert.equal(result.status, 'succeeded');
    assert.equal(result.text, streamed);
    assert.equal(result.usage.generated_tokens, 24);
    assert.ok(result.nodeId);
    const node = s.nodes.get(result.nodeId);
    assert.equal(node.parent, r.head);
    assert.equal(node.kind, 'assistant');
    assert.equal(node.text, streamed);
    assert.equal(s.head, result.nodeId);
    // A retried start with the same key is the same run.
    const key = 'run-key';
    const a = await s.startRun({ max_tokens: 4, idempotencyKey: key });
    const b = await s.startRun({ max_tokens: 4, idempotencyKey: key });
    assert.equal(a, b);
    await s.follow(a);
  });

  test('a dropped stream resumes from the last event id with nothing lost or repeated', async () => {
    const s = await client.createSession();
    await s.append(null, [{ kind: 'user', text: 'Go on.' }]);
    const runId = await s.startRun({ max_tokens: 64, seed: 5 });
    const reference = await client.session(s.id).follow(runId);
    // A fetch that cuts every event stream after 700 bytes, mid-event: the client reconnects.
    let cuts = 0;
    const flaky = async (url, init) => {
      const res = await fetch(url, init);
      if (!url.includes('/events')) return res;
      const reader = res.body.getReader();
      let budget = 700;
      let pending = null;
      const body = new ReadableStream({
        async pull(c) {
          if (budget <= 0) {
            ++cuts;
            reader.cancel().catch(() => {});
            c.error(new TypeError('connection reset'));
            return;
          }
          if (!pending) {
            const { value, done } = await reader.read();
            if (done) return c.close();
            pending = value;
          }
          const n = Math.min(budget, pending.length);
          c.enqueue(pending.slice(0, n));
          pending = n < pending.length ? pending.slice(n) : null;
          budget -= n;
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const c2 = new Client({ baseUrl: server.url, fetch: flaky, initialBackoffMs: 5, retries: 3 });
    const ids = [];
    const result = await c2.session(s.id).follow(runId, { onEvent: (ev) => ids.push(Number(ev.id)) });
    assert.ok(cuts >= 2, `cuts ${cuts}`);
    assert.equal(result.text, reference.text);
    assert.equal(result.status, 'succeeded');
    assert.deepEqual(ids, ids.map((_, i) => i + 1), 'every event id once, in order');
    // Joining later from an event id gets only what follows.
    const tail = await collect(client.runEvents(runId, { after: 10 }));
    assert.equal(tail[0].id, '11');
  });

  test('cancel stops a run; a follower sees run.cancelled', async () => {
    const s = await client.createSession();
    await s.append(null, [{ kind: 'user', text: 'Long answer please.' }]);
    const runId = await s.startRun({ max_tokens: 4000 });
    let tokens = 0;
    const follow = s.follow(runId, {
      onToken: () => {
        if (++tokens === 3) client.cancelRun(runId);
      },
    });
    const result = await follow;
    assert.equal(result.status, 'cancelled');
    assert.equal((await client.getRun(runId)).status, 'cancelled');
  });

  test('the session event feed reports another client\'s appends and runs', async () => {
    const s = await client.createSession();
    const watcher = client.session(s.id);
    await watcher.sync();
    const abort = new AbortController();
    const seen = [];
    const feed = (async () => {
      for await (const ev of watcher.events({ signal: abort.signal })) {
        seen.push(ev.event);
        if (ev.event === 'run.started') {
          await watcher.follow(ev.data.id);
          abort.abort();
        }
      }
    })();
    // Wait until the feed is connected (its first event is `sync`).
    while (!seen.includes('sync')) await new Promise((r) => setTimeout(r, 10));
    await s.append(null, [{ kind: 'user', text: 'Hello from elsewhere' }]);
    await s.startRun({ max_tokens: 8 });
    await feed;
    assert.ok(seen.includes('node.appended'), seen.join(','));
    assert.ok(seen.includes('run.started'), seen.join(','));
    assert.equal(watcher.pathTo(watcher.head).length, 2);
    assert.equal(watcher.pathTo(watcher.head)[0].text, 'Hello from elsewhere');
  });
});

describe('api keys', () => {
  test('a key is sent as a bearer token; a missing one is a 401 LlmsyncError', async () => {
    const keyed = await startServer({ name: 'keyed', config: { api_keys: { 'sk-test': 'team' } } });
    try {
      const anonymous = new Client({ baseUrl: keyed.url, retries: 0 });
      await assert.rejects(anonymous.listSessions(), (e) => e instanceof LlmsyncError && e.status === 401);
      const c = new Client({ baseUrl: keyed.url, apiKey: 'sk-test' });
      const s = await c.createSession();
      await s.append(null, [{ kind: 'user', text: 'with a key' }]);
      const out = await s.follow(await s.startRun({ max_tokens: 4 }));
      assert.equal(out.status, 'succeeded');
      assert.deepEqual((await c.listSessions()).map((x) => x.id), [s.id]);
      // The page still loads without a key (it then asks for one).
      assert.equal((await fetch(`${keyed.url}/`)).status, 200);
    } finally {
      await keyed.stop();
    }
  });
});
