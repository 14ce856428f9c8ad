// The llmsync chat page: a view over the native sync API through the JavaScript client
// (clients/js/llmsync.js, served as /assets/llmsync.js). The session's node tree is the state:
// the page renders the path to the head, streams runs from their durable event log (resuming
// from the last event id after a reload or a dropped connection), follows other tabs through the
// session event feed, and turns edits and regenerations into branches.
import { Client, LlmsyncError, randomKey } from './llmsync.js';

const $ = (id) => document.getElementById(id);
const kKeyStorage = 'llmsync.api_key';
const kMaxTokensStorage = 'llmsync.max_tokens';

function maxTokens() {
  const n = Number(localStorage.getItem(kMaxTokensStorage));
  return Number.isInteger(n) && n > 0 ? n : 512;
}

const client = new Client({ apiKey: localStorage.getItem(kKeyStorage) ?? '' });
const state = {
  session: null, // the replica (Session) of the open conversation
  feed: null, // AbortController of the session event feed
  run: null, // {id, from, text, lastEventId, abort, usage} of the run being shown
  usage: loadJson('llmsync.usage', {}), // result node id -> cost report of the run that wrote it
  editing: null, // id of the user node being edited
};

function loadJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function setStatus(text) { $('status').textContent = text ?? ''; }

function showError(e) {
  if (e?.name === 'AbortError') return;
  setStatus(e instanceof LlmsyncError ? `${e.code}: ${e.message}` : String(e?.message ?? e));
}

// ---- API key

function askKey(message) {
  return new Promise((resolve) => {
    const dialog = $('key-dialog');
    $('key-error').textContent = message ?? '';
    $('key-input').value = client.apiKey;
    dialog.addEventListener('close', () => {
      client.apiKey = $('key-input').value.trim();
      localStorage.setItem(kKeyStorage, client.apiKey);
      resolve();
    }, { once: true });
    dialog.showModal();
    $('key-input').focus();
  });
}

// Runs `fn`, asking for a key (again) while the server answers 401.
async function withKey(fn) {
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof LlmsyncError) || e.status !== 401) throw e;
      $('key-button').hidden = false;
      await askKey(client.apiKey ? 'That key was refused.' : '');
    }
  }
}

// ---- Conversation list

async function refreshList() {
  const list = await client.listSessions({ limit: 100 });
  const ul = $('conversations');
  ul.replaceChildren();
  for (const s of list) {
    if (s.metadata?.internal) continue; // e.g. the scratch sessions of title runs
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `/c/${s.id}`;
    a.textContent = s.metadata?.title || `Chat ${new Date(s.created_at).toLocaleString()}`;
    a.title = a.textContent;
    a.dataset.id = s.id;
    if (state.session?.id === s.id) a.setAttribute('aria-current', 'page');
    a.addEventListener('click', (ev) => {
      if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      history.pushState(null, '', a.href);
      openFromLocation();
    });
    li.append(a);
    ul.append(li);
  }
  const current = list.find((s) => s.id === state.session?.id);
  $('title').textContent = current?.metadata?.title || (state.session ? 'Chat' : 'New chat');
  document.title = `${$('title').textContent} · llmsync`;
}

// ---- Opening a conversation

function sessionIdFromLocation() {
  const m = /^\/c\/([0-9a-f]{64})$/.exec(location.pathname);
  return m ? m[1] : null;
}

async function openFromLocation() {
  state.feed?.abort();
  state.run?.abort.abort();
  state.run = null;
  state.editing = null;
  setStatus('');
  const id = sessionIdFromLocation();
  state.session = id ? client.session(id) : null;
  render();
  if (!state.session) {
    await refreshList().catch(showError);
    $('input').focus();
    return;
  }
  try {
    await state.session.sync();
  } catch (e) {
    showError(e);
    return;
  }
  render();
  refreshList().catch(showError);
  startFeed(state.session);
  if (state.session.runningRun) attach(state.session.runningRun);
  $('input').focus();
}

// The session event feed: other tabs' appends, head moves and runs.
async function startFeed(session) {
  const feed = new AbortController();
  state.feed = feed;
  try {
    for await (const ev of session.events({ since: session.seq, signal: feed.signal })) {
      if (state.session !== session) return;
      if (ev.event === 'run.started') {
        if (!state.run || state.run.id !== ev.data.id) attach(ev.data.id);
      } else if (['node.appended', 'head.moved', 'session.compacted', 'sync'].includes(ev.event)) {
        await session.sync().catch(() => {});
        render();
        if (ev.event === 'node.appended') refreshList().catch(() => {});
      }
    }
  } catch (e) {
    if (!feed.signal.aborted) showError(e);
  }
}

// ---- Runs

function runKey(runId) { return `llmsync.run.${runId}`; }

// Shows a run's reply as it streams, from where this page (or the page before a reload) left off.
async function attach(runId) {
  const session = state.session;
  if (state.run?.id === runId) return;
  state.run?.abort.abort();
  const saved = loadSaved(runId);
  const run = { id: runId, text: saved?.text ?? '', lastEventId: saved?.lastEventId ?? '0', from: saved?.from ?? null,
    usage: null, abort: new AbortController(), status: 'running' };
  state.run = run;
  render();
  try {
    const result = await session.follow(runId, {
      after: run.lastEventId,
      signal: run.abort.signal,
      onEvent: (ev) => {
        if (ev.event === 'run.started') run.from = ev.data.from;
        if (ev.event === 'token') run.text += ev.data.text;
        if (ev.event === 'run.usage') run.usage = ev.data;
        if (ev.id && ev.id !== '0') run.lastEventId = ev.id;
        sessionStorage.setItem(runKey(runId), JSON.stringify({ text: run.text, lastEventId: run.lastEventId,
          from: run.from }));
        renderStreaming();
      },
    });
    if (run.abort.signal.aborted) return;
    run.status = result.status;
    sessionStorage.removeItem(runKey(runId));
    if (result.nodeId && result.usage) {
      state.usage[result.nodeId] = result.usage;
      localStorage.setItem('llmsync.usage', JSON.stringify(state.usage));
    }
    if (result.status === 'failed') setStatus(`run failed: ${result.error?.message ?? ''}`);
    if (state.run === run) state.run = null;
    await session.sync().catch(() => {});
    render();
    // Only the tab that started the run names the conversation.
    if (result.status === 'succeeded' && sessionStorage.getItem(`llmsync.started.${runId}`)) {
      sessionStorage.removeItem(`llmsync.started.${runId}`);
      maybeTitle(session, result.nodeId).catch(() => {});
    }
  } catch (e) {
    if (state.run === run) state.run = null;
    render();
    showError(e);
  }
}

function loadSaved(runId) {
  try {
    return JSON.parse(sessionStorage.getItem(runKey(runId)));
  } catch {
    return null;
  }
}

async function startRun(from) {
  const session = state.session;
  const runId = await session.startRun({ from, max_tokens: maxTokens() });
  sessionStorage.setItem(`llmsync.started.${runId}`, '1');
  attach(runId);
}

// After the first reply, a short title run on the same model, stored as session metadata.
async function maybeTitle(session, replyId) {
  const list = await client.listSessions({ limit: 100 });
  const summary = list.find((s) => s.id === session.id);
  if (!summary || summary.metadata?.title || summary.metadata?.internal) return;
  const path = session.pathTo(replyId);
  const firstUser = path.find((n) => n.kind === 'user');
  if (!firstUser) return;
  // The title run lives in its own session, so the conversation's tree stays the user's.
  const scratch = await client.createSession();
  await scratch.setMetadata({ internal: 'title', for: session.id });
  const prompt = `Write a title of at most five words for a chat that starts with:\n${firstUser.text.slice(0, 500)}`;
  const r = await scratch.append(null, [{ kind: 'user', text: prompt }]);
  const runId = await scratch.startRun({ from: r.head, max_tokens: 12, temperature: 0.2 });
  const out = await scratch.follow(runId);
  let title = out.text.replace(/\s+/g, ' ').trim().replace(/^["'«]|["'»]$/g, '').slice(0, 60);
  if (!title) title = firstUser.text.replace(/\s+/g, ' ').trim().slice(0, 40);
  await session.setMetadata({ ...(summary.metadata ?? {}), title, title_session: scratch.id });
  await refreshList();
}

// ---- Sending, editing, regenerating, switching

async function send() {
  const text = $('input').value;
  if (!text.trim() || state.run) return;
  setStatus('');
  $('send').disabled = true;
  try {
    await withKey(async () => {
      if (!state.session) {
        const s = await client.createSession();
        history.pushState(null, '', `/c/${s.id}`);
        state.session = s;
        startFeed(s);
      }
    });
    const session = state.session;
    const head = session.head;
    const r = await session.append(head, [{ kind: 'user', text }], { expectHead: head ?? null });
    $('input').value = '';
    render();
    await startRun(r.head);
    refreshList().catch(() => {});
  } catch (e) {
    if (e instanceof LlmsyncError && e.status === 409) {
      await state.session.sync().catch(() => {});
      render();
      setStatus('The conversation moved on in another tab; your message is still in the box.');
    } else {
      showError(e);
    }
  } finally {
    $('send').disabled = false;
  }
}

async function stop() {
  const run = state.run;
  if (!run) return;
  try {
    await client.cancelRun(run.id);
  } catch (e) {
    showError(e);
  }
}

async function saveEdit(node, text) {
  const session = state.session;
  state.editing = null;
  try {
    const r = await session.append(node.parent, [{ kind: 'user', text }]);
    render();
    await startRun(r.head);
  } catch (e) {
    showError(e);
    render();
  }
}

async function regenerate(node) {
  const session = state.session;
  try {
    await session.setHead(node.parent);
    render();
    await startRun(node.parent);
  } catch (e) {
    showError(e);
  }
}

async function switchTo(node) {
  const session = state.session;
  try {
    await session.setHead(session.latestLeaf(node.id));
    render();
  } catch (e) {
    showError(e);
  }
}

// ---- Rendering

function shownKinds(n) { return n.kind !== 'template'; }

function costLine(u) {
  if (!u) return '';
  const ram = u.cached_tokens?.ram ?? 0;
  const disk = u.cached_tokens?.disk ?? 0;
  const parts = [`${u.prompt_tokens} prompt tokens: ${u.recomputed_tokens} computed, ${ram} from RAM cache, ${disk} from disk`,
    `${u.generated_tokens} generated`,
    `${u.request_bytes} B sent vs ${u.stateless_equivalent_bytes} B stateless`];
  if (u.ttft_ms != null) parts.push(`TTFT ${Math.round(u.ttft_ms)} ms`);
  return parts.join(' · ');
}

// ---- Compaction (issue 19): a summary node names the last node it folds (metadata.call_id).

// The turns a summary stands in for: the user turns up to the node it folds, and those of the
// earlier summaries it folded in turn.
function foldedTurns(session, summary, depth = 0) {
  const folded = summary.metadata?.call_id;
  if (!folded || !session.nodes.has(folded) || depth > 64) return 0;
  let turns = 0;
  for (const n of session.pathTo(folded)) {
    if (n.kind === 'user') ++turns;
    if (n.kind === 'summary') turns += foldedTurns(session, n, depth + 1);
  }
  return turns;
}

// The original branch's node the compacted branch's copies lead to: down from the folded node
// along the children that match the copies after the summary.
function originalOf(session, summary) {
  let orig = summary.metadata?.call_id;
  if (!orig || !session.nodes.has(orig)) return null;
  let copy = summary.id;
  for (;;) {
    const next = session.children(copy)[0];
    const match = next && session.children(orig).find((k) => k.kind === next.kind && k.text === next.text);
    if (!match) return orig;
    orig = match.id;
    copy = next.id;
  }
}

function summaryBlock(node, session, el) {
  const turns = foldedTurns(session, node);
  const role = document.createElement('div');
  role.className = 'role';
  role.textContent = `summary · stands in for ${turns} earlier turn${turns === 1 ? '' : 's'}`;
  el.setAttribute('aria-label', `Summary of ${turns} earlier turns`);
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = node.text ?? '';
  el.append(role, text);
  const orig = originalOf(session, node);
  if (orig) {
    const tools = document.createElement('div');
    tools.className = 'tools';
    const b = button('Show the original turns', () => switchTo(session.nodes.get(orig)), 'Show the original branch');
    b.disabled = !!state.run;
    tools.append(b);
    el.append(tools);
  }
  return el;
}

function messageEl(node, session, compactedAt) {
  const el = document.createElement('article');
  el.className = `msg ${node.kind}`;
  el.dataset.node = node.id;
  if (node.kind === 'summary') return summaryBlock(node, session, el);
  const role = document.createElement('div');
  role.className = 'role';
  role.textContent = node.kind;
  el.append(role);
  if (state.editing === node.id) {
    const area = document.createElement('textarea');
    area.value = node.text ?? '';
    area.setAttribute('aria-label', 'Edit message');
    area.rows = 3;
    const save = button('Save', () => saveEdit(node, area.value));
    save.className = 'save-edit';
    const cancel = button('Cancel', () => { state.editing = null; render(); });
    area.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); saveEdit(node, area.value); }
      if (ev.key === 'Escape') { state.editing = null; render(); }
    });
    el.append(area, save, cancel);
    queueMicrotask(() => area.focus());
    return el;
  }
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = node.visibility === 'hidden' ? '(hidden)' : node.text ?? '';
  el.append(text);
  const tools = document.createElement('div');
  tools.className = 'tools';
  const siblings = session.children(node.parent).filter((s) => s.kind === node.kind);
  if (siblings.length > 1) {
    const i = siblings.findIndex((s) => s.id === node.id);
    const sw = document.createElement('span');
    sw.className = 'switcher';
    const prev = button('‹', () => switchTo(siblings[i - 1]), 'Previous version');
    prev.disabled = i === 0 || !!state.run;
    const next = button('›', () => switchTo(siblings[i + 1]), 'Next version');
    next.disabled = i === siblings.length - 1 || !!state.run;
    const label = document.createElement('span');
    label.className = 'position';
    label.textContent = `${i + 1}/${siblings.length}`;
    sw.append(prev, label, next);
    tools.append(sw);
  }
  if (node.kind === 'user' && !state.run) {
    tools.append(button('Edit', () => { state.editing = node.id; render(); }, 'Edit this message'));
  }
  if (node.kind === 'assistant' && !state.run) {
    tools.append(button('Regenerate', () => regenerate(node), 'Regenerate this reply'));
  }
  const summary = compactedAt?.get(node.id);
  if (summary && !state.run) {  // the turns up to here were compacted: the branch that goes on
    tools.append(button('Compacted branch', () => switchTo(summary), 'Show the compacted branch'));
  }
  if (tools.childElementCount) el.append(tools);
  if (node.kind === 'assistant' && state.usage[node.id]) {
    const cost = document.createElement('div');
    cost.className = 'cost';
    cost.textContent = costLine(state.usage[node.id]);
    el.append(cost);
  }
  return el;
}

function button(label, onClick, aria) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (aria) b.setAttribute('aria-label', aria);
  b.addEventListener('click', onClick);
  return b;
}

function render() {
  const session = state.session;
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren();
  $('stop').hidden = !state.run;
  $('send').hidden = !!state.run;
  document.querySelectorAll('#conversations a').forEach((a) => {
    if (a.dataset.id === session?.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!session) {
    $('title').textContent = 'New chat';
    renderPanel();
    return;
  }
  const compactedAt = new Map();  // folded node -> its newest summary
  for (const n of session.nodes.values()) {
    if (n.kind === 'summary' && n.metadata?.call_id) compactedAt.set(n.metadata.call_id, n);
  }
  for (const n of session.pathTo(session.head)) {
    if (shownKinds(n)) box.append(messageEl(n, session, compactedAt));
  }
  if (state.run) {
    const el = document.createElement('article');
    el.className = 'msg assistant streaming';
    el.id = 'streaming';
    el.dataset.run = state.run.id;
    const role = document.createElement('div');
    role.className = 'role';
    role.textContent = 'assistant';
    const text = document.createElement('div');
    text.className = 'text';
    el.append(role, text);
    box.append(el);
    renderStreaming();
  }
  renderPanel();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function renderStreaming() {
  const el = $('streaming');
  if (!el || !state.run) return;
  el.querySelector('.text').textContent = state.run.text;
  const box = $('messages');
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) box.scrollTop = box.scrollHeight;
}

function renderPanel() {
  const session = state.session;
  const tree = $('tree');
  tree.replaceChildren();
  if (!session) {
    $('totals').textContent = 'No turns yet.';
    return;
  }
  let turns = 0;
  const sum = { prompt: 0, computed: 0, ram: 0, disk: 0, generated: 0, sent: 0, stateless: 0 };
  for (const n of session.nodes.values()) {
    const u = state.usage[n.id];
    if (!u) continue;
    ++turns;
    sum.prompt += u.prompt_tokens;
    sum.computed += u.recomputed_tokens;
    sum.ram += u.cached_tokens?.ram ?? 0;
    sum.disk += u.cached_tokens?.disk ?? 0;
    sum.generated += u.generated_tokens;
    sum.sent += u.request_bytes;
    sum.stateless += u.stateless_equivalent_bytes;
  }
  $('totals').textContent = `${session.nodes.size} nodes, ${session.heads.length} branch tips. ` +
    (turns ? `${turns} turns seen here: ${sum.prompt} prompt tokens (${sum.computed} computed, ${sum.ram} RAM, ` +
      `${sum.disk} disk), ${sum.generated} generated; ${sum.sent} B sent vs ${sum.stateless} B stateless.` : '');
  const onPath = new Set(session.pathTo(session.head).map((n) => n.id));
  const build = (parent) => {
    const kids = session.children(parent);
    if (!kids.length) return null;
    const ul = document.createElement('ul');
    for (const k of kids) {
      const li = document.createElement('li');
      const label = k.kind === 'summary' ? `summary (${foldedTurns(session, k)} turns)` : k.kind;
      const b = button(`${label}: ${(k.text ?? '').slice(0, 60) || '…'}`, () => switchTo(k));
      if (k.kind === 'summary') b.classList.add('summary');
      if (onPath.has(k.id)) b.classList.add('on-path');
      if (k.id === session.head) b.classList.add('is-head');
      b.disabled = !!state.run;
      li.append(b);
      const sub = build(k.id);
      if (sub) li.append(sub);
      ul.append(li);
    }
    return ul;
  };
  const root = build(null);
  if (root) tree.append(root);
}

async function download(format) {
  const session = state.session;
  if (!session) return;
  try {
    const text = await session.export(format ? { format } : {});
    const blob = new Blob([text], { type: format === 'markdown' ? 'text/markdown' : 'application/x-ndjson' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${session.id.slice(0, 12)}.${format === 'markdown' ? 'md' : 'jsonl'}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    showError(e);
  }
}

// ---- Wiring

$('composer').addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
$('input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send();
  }
});
$('stop').addEventListener('click', stop);
$('new-chat').addEventListener('click', () => {
  history.pushState(null, '', '/');
  openFromLocation();
});
$('key-button').addEventListener('click', () => askKey().then(() => openFromLocation()));
$('toggle-sidebar').addEventListener('click', () => $('sidebar').classList.toggle('open'));
$('toggle-panel').addEventListener('click', () => {
  const panel = $('panel');
  panel.hidden = !panel.hidden;
  $('toggle-panel').setAttribute('aria-expanded', String(!panel.hidden));
});
$('max-tokens').value = String(maxTokens());
$('max-tokens').addEventListener('change', () => {
  const n = Number($('max-tokens').value);
  if (Number.isInteger(n) && n > 0) localStorage.setItem(kMaxTokensStorage, String(n));
});
$('export-jsonl').addEventListener('click', () => download(''));
$('export-md').addEventListener('click', () => download('markdown'));
window.addEventListener('popstate', () => openFromLocation());

(async () => {
  try {
    const h = await client.health();
    $('model-name').textContent = h.model;
    await withKey(() => client.listSessions({ limit: 1 }));
    if (client.apiKey) $('key-button').hidden = false;
  } catch (e) {
    showError(e);
  }
  await openFromLocation();
})();

export { randomKey }; // re-exported for debugging from the console
