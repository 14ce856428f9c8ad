// Issue 19 through the official `openai` npm client: a Responses conversation chained with
// previous_response_id and `truncation: "auto"` on a model whose context holds 768 tokens, driven
// about 3x past it. Every turn must succeed; past the budget llmsync compacts onto a new branch
// (pinned system prompt, a model-written summary, the recent turns), the original branch keeps
// every node, and the turns after a compaction reuse the compacted prefix (cached tokens > 0).
// Then the same through chat completions with llmsync's `llmsync.context` extension and the
// whole original history re-sent every turn, as chat clients do: llmsync continues on the
// compacted branch, so compactions stay rare instead of happening at every turn past the budget.
//
//   node openai_long_session_test.mjs --llmsync BIN --npm-dir DIR --work DIR
import assert from 'node:assert/strict';
import path from 'node:path';

import { Arg, NpmRequire, StartServe, kTinyLlama } from './serve_helpers.mjs';

const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));
const require = NpmRequire(npmDir);
const { OpenAI } = require('openai');
const kContext = 768;  // byte vocabulary: the summary instruction alone is ~250 tokens

async function LongConversation(client, port) {
  const model = (await client.models.list()).data[0].id;
  // Without truncation the conversation dies at the context: a 400 context_length_exceeded.
  await assert.rejects(client.responses.create({ model, input: 'x'.repeat(kContext + 10), max_output_tokens: 4 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded');

  let previous = null;
  const turns = [];
  let newTokens = 0;
  for (let t = 0; newTokens < 3 * kContext; ++t) {
    const r = await client.responses.create({
      model,
      input: `turn ${t}: tell me more about the tree of nodes, please.`,
      instructions: t === 0 ? 'You are a patient assistant.' : undefined,
      previous_response_id: previous ?? undefined,
      truncation: 'auto',
      max_output_tokens: 8,
      seed: t,
    });
    assert.ok(r.status === 'completed' || r.status === 'incomplete', `turn ${t}: ${r.status}`);
    assert.equal(r.truncation, 'auto');
    turns.push({ input: r.usage.input_tokens, cached: r.usage.input_tokens_details.cached_tokens,
      node: r.llmsync.node, from: r.llmsync.from, session: r.llmsync.session });
    newTokens += 20 + 8;
    previous = r.id;
  }
  // Compactions show as a prompt that shrinks; the turn after each reuses the compacted prefix.
  let compactions = 0;
  for (let i = 1; i + 1 < turns.length; ++i) {
    if (turns[i].input < turns[i - 1].input) {
      ++compactions;
      assert.ok(turns[i].input <= kContext / 2 + 64, `turn ${i} compacted to ${turns[i].input} tokens`);
      assert.ok(turns[i + 1].cached > 0, `turn ${i + 1} after a compaction reused nothing`);
    }
  }
  assert.ok(compactions >= 2, `only ${compactions} compactions in ${turns.length} turns`);
  // The original branch keeps every node: every answer is still in the session, and the branch
  // that reached the first compaction is whole from its root.
  const session = turns[0].session;
  const diff = await (await fetch(`http://127.0.0.1:${port}/v1/sessions/${session}?since=0`)).json();
  const nodes = new Map(diff.nodes.map((n) => [n.id, n]));
  for (const t of turns) assert.ok(nodes.has(t.node), `answer node ${t.node} is gone`);
  assert.ok(diff.nodes.some((n) => n.kind === 'summary'), 'no summary node');
  const first = turns.findIndex((t, i) => i > 0 && t.input < turns[i - 1].input);
  let depth = 0;
  for (let id = turns[first - 1].node; id; id = nodes.get(id).parent) ++depth;
  assert.ok(depth >= 2 * first, `the original branch has ${depth} nodes for ${first} turns`);
  console.log(`${turns.length} turns, ${compactions} compactions`);
}

async function ChatConversation(client, port) {
  const model = (await client.models.list()).data[0].id;
  const system = 'You are a terse assistant for chat turns.';
  const messages = [{ role: 'system', content: system }];
  const turns = [];
  let newTokens = 0;
  for (let t = 0; newTokens < 3 * kContext; ++t) {
    messages.push({ role: 'user', content: `chat ${t}: go on.` });
    const r = await client.chat.completions.create({
      model, messages, max_tokens: 8, seed: t, llmsync: { context: { policy: 'auto' } },
    });
    assert.equal(r.choices.length, 1, `turn ${t}`);
    const reply = r.choices[0].message.content;
    assert.equal(typeof reply, 'string', `turn ${t}`);
    messages.push({ role: 'assistant', content: reply });  // the whole original history, re-sent
    turns.push({ prompt: r.usage.prompt_tokens, cached: r.usage.prompt_tokens_details.cached_tokens,
      session: r.llmsync.session, compaction: r.llmsync.compaction });
    newTokens += 40 + 8;  // the message with its markup, and the reply
  }
  // The prompt shrinks where a turn runs on a new compacted branch; between two such turns the
  // re-sent history keeps landing on the same branch and its cached prefix.
  const shrinks = [];
  for (let i = 1; i < turns.length; ++i) {
    if (turns[i].prompt < turns[i - 1].prompt) shrinks.push(i);
    if (i > 1 && turns[i - 1].prompt < turns[i - 2].prompt) {
      assert.ok(turns[i].cached > 0, `turn ${i} after a compaction reused nothing`);
    }
  }
  assert.ok(shrinks.length >= 2, `only ${shrinks.length} compactions in ${turns.length} turns`);
  for (let k = 1; k < shrinks.length; ++k) {
    assert.ok(shrinks[k] - shrinks[k - 1] >= 4, `compactions at turns ${shrinks}: not rare`);
  }
  for (let i = 1; i < turns.length; ++i) {
    if (!shrinks.includes(i) && !shrinks.includes(i - 1)) assert.ok(turns[i].cached > 0, `turn ${i}`);
  }
  // One summary per compaction, not one per turn past the budget: the summaries under this
  // conversation's system prompt node.
  const diff = await (await fetch(`http://127.0.0.1:${port}/v1/sessions/${turns[0].session}?since=0`)).json();
  const pinned = diff.nodes.filter((n) => n.kind === 'system' && n.text === system).map((n) => n.id);
  const summaries = diff.nodes.filter((n) => n.kind === 'summary' && pinned.includes(n.parent));
  assert.ok(summaries.length >= shrinks.length && summaries.length <= shrinks.length + 1,
    `${summaries.length} summaries for ${shrinks.length} compactions`);
  // A bad policy in the extension is a 400 naming the field.
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2, llmsync: { context: { policy: 'sometimes' } } }),
  (e) => e.status === 400 && /context\.policy/.test(e.message));
  console.log(`chat: ${turns.length} turns, ${shrinks.length} compactions at turns ${shrinks}`);
}

const server = await StartServe(llmsync, work, { makeArgs: [...kTinyLlama, '--ctx', String(kContext)], kvRamMb: 16 });
const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'local', maxRetries: 0 });
try {
  await LongConversation(client, server.port);
  await ChatConversation(client, server.port);
} catch (e) {
  server.proc.kill('SIGKILL');
  console.error(e);
  console.error('server log: ' + server.logPath);
  process.exit(1);
}
server.proc.kill('SIGTERM');
console.log('openai long session test passed');
