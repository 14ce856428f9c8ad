// llmsync JavaScript client: the native sync API (docs/PROTOCOL.md) for browsers and Node >= 18.
//
// A Session is a local replica of a session's node tree, kept in step with `?since=` and the
// ETag; appends carry idempotency keys (retried safely) and an optional expect_head
// compare-and-swap; runs stream over SSE parsed from fetch's ReadableStream (EventSource cannot
// send headers) and reattach from the last event id after a dropped connection, with backoff and
// a bounded number of retries. Ids stay strings end to end: 64-bit numbers lose precision here.
//
// No dependencies. One file, so the web page can import it as it is (/assets/llmsync.js).

const kTerminal = new Set(['run.completed', 'run.failed', 'run.cancelled']);

// An error the server answered ({"error": {"code", "message"}}) or a transport failure.
export class LlmsyncError extends Error {
  constructor(message, { status = 0, code = 'unavailable', body = null } = {}) {
    super(message);
    this.name = 'LlmsyncError';
    this.status = status; // 0: no HTTP answer (network error)
    this.code = code;
    this.body = body;
  }
}

// A fresh random key for idempotent requests.
export function randomKey() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; ++i) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(t);
      reject(signal.reason ?? new Error('aborted'));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Server-sent events from a byte stream (a fetch Response body): yields {id, event, data}.
// `id` is the event's id field (a string) or undefined; `event` defaults to "message".
export async function* parseSse(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = { id: undefined, event: '', data: [] };
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let done = false; !done;) {
      const chunk = await reader.read();
      done = chunk.done;
      buffer += done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buffer);
        // A lone trailing \r may be the first half of \r\n: wait for more (unless the stream ended).
        if (!m || (!done && m[0] === '\r' && m.index === buffer.length - 1)) break;
        const line = buffer.slice(0, m.index);
        buffer = buffer.slice(m.index + m[0].length);
        if (line === '') {
          if (event.data.length > 0 || event.event) {
            yield { id: event.id, event: event.event || 'message', data: event.data.join('\n') };
          }
          event = { id: event.id, event: '', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') event.data.push(value);
        else if (field === 'event') event.event = value;
        else if (field === 'id' && !value.includes('\0')) event.id = value;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock?.();
  }
}

export class Client {
  // baseUrl: '' in a page served by llmsync (same origin), else 'http://127.0.0.1:8420'.
  constructor({ baseUrl = '', apiKey = '', fetch: fetchImpl, retries = 6, initialBackoffMs = 100,
    maxBackoffMs = 4000 } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.apiKey = apiKey;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    this.retries = retries;
    this.initialBackoffMs = initialBackoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.bytesSent = 0;
  }

  backoff(attempt) {
    const base = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** attempt);
    return base / 2 + Math.random() * (base / 2);
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.apiKey) h.Authorization = `Bearer ${this.apiKey}`;
    return h;
  }

  // One HTTP exchange. JSON bodies always carry Content-Type: application/json. `retry` allows
  // retrying network errors and 503s (only for requests that are safe to repeat).
  async raw(method, path, { body, headers = {}, signal, retry = false } = {}) {
    // no-store: the replica keeps its own validator (sync() sends If-None-Match), so the browser's
    // HTTP cache adds nothing but a second copy that could be out of date.
    const init = { method, headers: this.headers(headers), signal, cache: 'no-store' };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    for (let attempt = 0; ; ++attempt) {
      let res;
      try {
        res = await this.fetch(this.baseUrl + path, init);
      } catch (e) {
        if (signal?.aborted || !retry || attempt >= this.retries) {
          if (signal?.aborted) throw e;
          throw new LlmsyncError(`${method} ${path}: ${e.message}`);
        }
        await sleep(this.backoff(attempt), signal);
        continue;
      }
      if (init.body !== undefined) this.bytesSent += new TextEncoder().encode(init.body).length;
      if (res.status === 503 && retry && attempt < this.retries) {
        await res.arrayBuffer().catch(() => {});
        await sleep(this.backoff(attempt), signal);
        continue;
      }
      return res;
    }
  }

  // A JSON request: returns the parsed body, throws LlmsyncError on a non-2xx answer.
  async request(method, path, options = {}) {
    const res = await this.raw(method, path, options);
    return Client.decode(res, method, path);
  }

  static async decode(res, method, path) {
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!res.ok && res.status !== 304) {
      const err = json?.error ?? {};
      throw new LlmsyncError(err.message ?? `${method} ${path}: HTTP ${res.status}`,
        { status: res.status, code: err.code ?? 'http_error', body: json });
    }
    return json;
  }

  async health() { return this.request('GET', '/healthz', { retry: true }); }

  async createSession({ model } = {}) {
    const r = await this.request('POST', '/v1/sessions', { body: model ? { model } : {} });
    const s = new Session(this, r.id);
    s.root = r.root;
    s.seq = '0';
    return s;
  }

  // A replica of an existing session (call sync() to fill it).
  session(id) { return new Session(this, id); }

  // The tenant's sessions, newest first: [{id, created_at, head, head_seq, seq, metadata}].
  async listSessions({ limit = 100 } = {}) {
    const r = await this.request('GET', `/v1/sessions?limit=${limit}`, { retry: true });
    return r.sessions;
  }

  // Replaces the session's metadata (a JSON object, e.g. {"title": "..."}).
  async setSessionMetadata(sessionId, metadata) {
    return this.request('PATCH', `/v1/sessions/${sessionId}`, { body: { metadata }, retry: true });
  }

  async getRun(runId) { return this.request('GET', `/v1/runs/${runId}`, { retry: true }); }

  // Authoritative and idempotent: when it returns, the run produces no more tokens.
  async cancelRun(runId) { return this.request('POST', `/v1/runs/${runId}/cancel`, { retry: true }); }

  // The run's events after `after` (a string or number id), then live ones, as an async
  // iterator of {id, event, data} with `data` parsed. A dropped stream is reopened from the last
  // event id (Last-Event-ID) with backoff; `retries` consecutive failures without progress end it
  // with an LlmsyncError. Ends after the terminal event.
  async* runEvents(runId, { after = '0', signal } = {}) {
    let last = String(after);
    let failures = 0;
    for (;;) {
      let res;
      try {
        res = await this.raw('GET', `/v1/runs/${runId}/events?after=${last}`,
          { headers: { 'Last-Event-ID': last, Accept: 'text/event-stream' }, signal });
      } catch (e) {
        if (signal?.aborted) return;
        if (++failures > this.retries) throw e;
        await sleep(this.backoff(failures - 1), signal).catch(() => {});
        continue;
      }
      if (!res.ok) {
        const err = await Client.decode(res, 'GET', `/v1/runs/${runId}/events`).catch((e) => e);
        if (res.status >= 500 && ++failures <= this.retries) {
          await sleep(this.backoff(failures - 1), signal).catch(() => {});
          continue;
        }
        throw err instanceof Error ? err : new LlmsyncError(`HTTP ${res.status}`, { status: res.status });
      }
      try {
        for await (const ev of parseSse(res.body, signal)) {
          const data = ev.data ? JSON.parse(ev.data) : {};
          if (ev.event === 'error') {
            throw new LlmsyncError(data.message ?? 'stream error', { status: 0, code: data.code ?? 'error', body: data });
          }
          if (ev.id !== undefined && ev.id !== '0') last = ev.id;
          failures = 0;
          yield { id: ev.id, event: ev.event, data };
          if (kTerminal.has(ev.event)) return;
        }
      } catch (e) {
        if (e instanceof LlmsyncError) throw e;
        if (signal?.aborted) return;
      }
      if (signal?.aborted) return;
      if (++failures > this.retries) {
        throw new LlmsyncError(`the event stream of run ${runId} kept dropping (last event ${last})`);
      }
      await sleep(this.backoff(failures - 1), signal).catch(() => {});
    }
  }
}

export class Session {
  constructor(client, id) {
    this.client = client;
    this.id = id;
    this.root = null;
    this.seq = '0'; // the highest session seq this replica has seen (a string)
    this.head = null;
    this.headSeq = '0';
    this.heads = [];
    this.runningRun = null;
    this.nodes = new Map(); // id -> node as served
    this.etag = null;
  }

  // Fetches what changed since the replica's seq (nothing when the ETag still matches).
  // Returns the nodes that were new to the replica.
  async sync({ signal } = {}) {
    const headers = {};
    if (this.etag) headers['If-None-Match'] = this.etag;
    const path = `/v1/sessions/${this.id}?since=${this.seq}`;
    const res = await this.client.raw('GET', path, { headers, signal, retry: true });
    if (res.status === 304) return []; // no body (cancelling it would show as an aborted request)
    const r = await Client.decode(res, 'GET', path);
    this.etag = res.headers.get('ETag');
    const added = [];
    for (const n of r.nodes) {
      if (!this.nodes.has(n.id)) added.push(n);
      this.nodes.set(n.id, n);
    }
    this.seq = String(r.seq);
    this.head = r.head;
    this.headSeq = String(r.head_seq);
    this.heads = r.heads;
    this.runningRun = r.running_run;
    if (r.more) return added.concat(await this.sync({ signal }));
    return added;
  }

  // Appends a chain of nodes ({kind, text, visibility?, metadata?}) under `parent` (null: the
  // top). A stable idempotency key makes retries safe; with `expectHead` the append is a
  // compare-and-swap (a moved head throws LlmsyncError with status 409 and body.head).
  async append(parent, nodes, { expectHead, idempotencyKey = randomKey(), signal } = {}) {
    const body = { parent: parent ?? null, nodes, idempotency_key: idempotencyKey };
    if (expectHead !== undefined) body.expect_head = expectHead;
    const r = await this.client.request('POST', `/v1/sessions/${this.id}/nodes`, { body, signal, retry: true });
    let prev = parent ?? null;
    r.nodes.forEach((n, i) => {
      if (!this.nodes.has(n.id)) {
        this.nodes.set(n.id, { id: n.id, parent: prev, seq: n.seq, kind: nodes[i].kind, text: nodes[i].text,
          visibility: nodes[i].visibility ?? 'public', n_tokens: n.n_tokens });
      }
      prev = n.id;
    });
    this.head = r.head;
    return r;
  }

  // Moves the head (switch branch, rewind); nothing is deleted.
  async setHead(node, { expectHead, signal } = {}) {
    const body = { node: node ?? null };
    if (expectHead !== undefined) body.expect_head = expectHead;
    const r = await this.client.request('POST', `/v1/sessions/${this.id}/head`, { body, signal, retry: true });
    this.head = r.head;
    return r;
  }

  // Starts a run from `from` (default: the head). Returns the run id. An idempotency key names
  // the run, so a retried request never starts a second one.
  async startRun({ idempotencyKey = randomKey(), signal, ...options } = {}) {
    const body = { ...options, idempotency_key: idempotencyKey };
    const r = await this.client.request('POST', `/v1/sessions/${this.id}/runs`, { body, signal, retry: true });
    this.runningRun = r.id;
    return r.id;
  }

  // Follows a run to its end (resuming after drops): calls onToken(text) and onEvent(ev), and
  // returns {status, text, nodeId, finishReason, usage, lastEventId}. Aborting `signal` stops
  // following (the run goes on: stop is cancelRun, not a disconnect).
  async follow(runId, { after = '0', onToken, onEvent, signal } = {}) {
    const out = { status: 'running', text: '', nodeId: null, finishReason: null, usage: null,
      lastEventId: String(after), error: null };
    for await (const ev of this.client.runEvents(runId, { after, signal })) {
      if (ev.id !== undefined && ev.id !== '0') out.lastEventId = ev.id;
      onEvent?.(ev);
      if (ev.event === 'token') {
        out.text += ev.data.text;
        onToken?.(ev.data.text);
      } else if (ev.event === 'run.usage') {
        out.usage = ev.data;
      } else if (ev.event === 'run.completed') {
        out.status = 'succeeded';
        out.nodeId = ev.data.node_id;
        out.finishReason = ev.data.finish_reason;
      } else if (ev.event === 'run.failed') {
        out.status = 'failed';
        out.error = ev.data;
      } else if (ev.event === 'run.cancelled') {
        out.status = 'cancelled';
      }
    }
    if (out.status !== 'running' && !signal?.aborted) await this.sync().catch(() => {});
    if (this.runningRun === runId && out.status !== 'running') this.runningRun = null;
    return out;
  }

  // Live notifications of the session (node.appended, head.moved, run.started, and a `sync`
  // first), reconnecting from the last seq. An async iterator of {id, event, data}; ends when
  // `signal` aborts or `retries` reconnects in a row fail.
  async* events({ since = this.seq, signal } = {}) {
    let last = String(since);
    let failures = 0;
    const client = this.client;
    while (!signal?.aborted) {
      try {
        const res = await client.raw('GET', `/v1/sessions/${this.id}/events?since=${last}`,
          { headers: { 'Last-Event-ID': last, Accept: 'text/event-stream' }, signal });
        if (!res.ok) {
          const err = await Client.decode(res, 'GET', 'events').catch((e) => e);
          if (res.status < 500) throw err;
        } else {
          for await (const ev of parseSse(res.body, signal)) {
            if (ev.id !== undefined && ev.id !== '0' && BigInt(ev.id) > BigInt(last)) last = ev.id;
            failures = 0;
            yield { id: ev.id, event: ev.event, data: ev.data ? JSON.parse(ev.data) : {} };
          }
        }
      } catch (e) {
        if (signal?.aborted) return;
        if (e instanceof LlmsyncError && e.status >= 400 && e.status < 500) throw e;
      }
      if (signal?.aborted) return;
      if (++failures > client.retries) throw new LlmsyncError(`the event feed of session ${this.id} kept dropping`);
      await sleep(client.backoff(failures - 1), signal).catch(() => {});
    }
  }

  // Pins the KV of the path to `node` for ttlS seconds.
  async lease(node, ttlS) {
    return this.client.request('POST', `/v1/sessions/${this.id}/lease`, { body: { node, ttl_s: ttlS } });
  }

  async releaseLease(leaseId) {
    return this.client.request('DELETE', `/v1/sessions/${this.id}/lease?lease_id=${leaseId}`, { retry: true });
  }

  // The JSON Lines bundle, or the current branch as Markdown with format 'markdown'.
  async export({ format } = {}) {
    const path = `/v1/sessions/${this.id}/export${format ? `?format=${format}` : ''}`;
    const res = await this.client.raw('GET', path, { retry: true });
    if (!res.ok) return Client.decode(res, 'GET', path);
    return res.text();
  }

  async setMetadata(metadata) { return this.client.setSessionMetadata(this.id, metadata); }

  // ---- The replica

  // The nodes from the top down to `id` (empty for null).
  pathTo(id) {
    const out = [];
    for (let n = id ? this.nodes.get(id) : null; n; n = n.parent ? this.nodes.get(n.parent) : null) out.push(n);
    return out.reverse();
  }

  // The children of `id` (null: the top-level nodes), oldest first.
  children(id) {
    const out = [];
    for (const n of this.nodes.values()) {
      const p = n.parent && this.nodes.has(n.parent) ? n.parent : null;
      if (p === (id ?? null)) out.push(n);
    }
    return out.sort((a, b) => Number(a.seq) - Number(b.seq));
  }

  // The deepest node under `id` following the newest child at each step (where a branch ends).
  latestLeaf(id) {
    let cur = id;
    for (;;) {
      const kids = this.children(cur);
      if (kids.length === 0) return cur;
      cur = kids[kids.length - 1].id;
    }
  }
}
