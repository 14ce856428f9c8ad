// The official `openai` npm client against a real `llmsync serve`: chat completions (stream and
// non-stream, with prefix reuse visible in usage), the Responses API (previous_response_id,
// background + stream resume with starting_after, cancel, delete) and structured output.
//
// Run by ctest (tests/api/CMakeLists.txt) after the openai_npm_install fixture:
//   node openai_client_test.mjs --llmsync BIN --npm-dir DIR --work DIR
import assert from 'node:assert/strict';
import path from 'node:path';

import { Arg, NpmRequire, StartServe } from './serve_helpers.mjs';

const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));

const require = NpmRequire(npmDir);
let OpenAI;
try {
  OpenAI = require('openai').OpenAI;
} catch (e) {
  console.error(`the openai package is not installed in ${npmDir}: ${e.message}`);
  process.exit(1);
}

async function ChatTests(client) {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  const model = models.data[0].id;

  const history = [
    { role: 'system', content: 'You are a terse assistant.' },
    { role: 'user', content: 'Say something.' },
  ];
  const first = await client.chat.completions.create({ model, messages: history, max_tokens: 16, seed: 3 });
  assert.equal(first.object, 'chat.completion');
  assert.equal(first.choices.length, 1);
  assert.equal(typeof first.choices[0].message.content, 'string');
  assert.equal(first.choices[0].message.role, 'assistant');
  assert.equal(first.usage.completion_tokens, 16);
  assert.equal(first.choices[0].finish_reason, 'length');
  assert.ok(first.usage.prompt_tokens > 0);
  assert.equal(first.usage.total_tokens, first.usage.prompt_tokens + 16);

  // The client re-sends the whole history: the prefix comes from the cache.
  history.push({ role: 'assistant', content: first.choices[0].message.content });
  history.push({ role: 'user', content: 'And again.' });
  const second = await client.chat.completions.create({ model, messages: history, max_tokens: 8 });
  assert.equal(second.llmsync.reused_nodes, 3, JSON.stringify(second.llmsync));
  assert.equal(second.llmsync.appended_nodes, 1);
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= first.usage.total_tokens - 1,
    `cached ${second.usage.prompt_tokens_details.cached_tokens} of ${second.usage.prompt_tokens}`);

  // Streaming, with usage at the end.
  history.push({ role: 'assistant', content: second.choices[0].message.content });
  history.push({ role: 'user', content: 'Stream it.' });
  const stream = await client.chat.completions.create({
    model, messages: history, max_tokens: 10, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    ++chunks;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(finish, 'length');
  assert.ok(usage, 'a usage chunk');
  assert.equal(usage.completion_tokens, 10);
  assert.ok(usage.prompt_tokens_details.cached_tokens >= second.usage.total_tokens - 1);

  // The streamed text is the node's text: re-sending it matches the node.
  history.push({ role: 'assistant', content: text });
  history.push({ role: 'user', content: 'Last one.' });
  const third = await client.chat.completions.create({ model, messages: history, max_tokens: 4 });
  assert.equal(third.llmsync.reused_nodes, 7, JSON.stringify(third.llmsync));
  assert.equal(third.llmsync.divergence, null);

  // n > 1 samples.
  const many = await client.chat.completions.create({ model, messages: history.slice(0, 2), max_tokens: 4, n: 3 });
  assert.equal(many.choices.length, 3);
  assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2]);

  // Errors are OpenAI-shaped API errors, not crashes.
  await assert.rejects(client.chat.completions.create({ model, messages: [] }),
    (e) => e.status === 400 && typeof e.message === 'string');
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'x' }] }),
    (e) => e.status === 400);
  return model;
}

async function ResponseTests(client, model) {
  const r1 = await client.responses.create({
    model, instructions: 'Be brief.', input: 'Hello there.', max_output_tokens: 12,
  });
  assert.equal(r1.object, 'response');
  assert.equal(r1.status, 'incomplete'); // it stopped at max_output_tokens
  assert.deepEqual(r1.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(typeof r1.output_text, 'string');
  assert.equal(r1.usage.output_tokens, 12);
  assert.ok(r1.usage.input_tokens > 0);

  const r2 = await client.responses.create({
    model, previous_response_id: r1.id, input: 'Continue.', max_output_tokens: 6,
  });
  assert.equal(r2.status, 'incomplete');
  assert.equal(r2.previous_response_id, r1.id);
  assert.ok(r2.usage.input_tokens_details.cached_tokens >= r1.usage.total_tokens - 1,
    JSON.stringify(r2.usage));

  const polled = await client.responses.retrieve(r2.id);
  assert.equal(polled.status, 'incomplete');
  assert.equal(polled.output_text, r2.output_text);

  // Background + stream: read a few events, drop the connection, resume after the last one seen.
  const bg = await client.responses.create({
    model, input: 'Tell a long story.', background: true, stream: true, max_output_tokens: 48,
  });
  let id = null;
  let last = -1;
  const seen = [];
  for await (const ev of bg) {
    assert.ok(ev.sequence_number > last, 'sequence numbers increase');
    last = ev.sequence_number;
    seen.push(ev.type);
    if (ev.type === 'response.created') id = ev.response.id;
    if (seen.length >= 6) break;
  }
  assert.ok(id);
  assert.equal(seen[0], 'response.created');
  const resumed = await client.responses.retrieve(id, { stream: true, starting_after: last });
  let text = '';
  let done = null;
  let first = null;
  for await (const ev of resumed) {
    if (first === null) first = ev.sequence_number;
    assert.ok(ev.sequence_number > last);
    last = ev.sequence_number;
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.incomplete') done = ev.response;
  }
  assert.ok(done, 'the resumed stream ends with response.incomplete (max_output_tokens)');
  assert.equal(done.usage.output_tokens, 48);
  // Everything from the start, replayed: the deltas add up to the final text.
  const full = await client.responses.retrieve(id, { stream: true, starting_after: -1 });
  let all = '';
  for await (const ev of full) if (ev.type === 'response.output_text.delta') all += ev.delta;
  assert.equal(all, done.output.at(0).content.at(0).text);
  assert.ok(all.endsWith(text));

  // Cancel a background response, then delete it.
  const slow = await client.responses.create({ model, input: 'Go on.', background: true, max_output_tokens: 1000 });
  assert.ok(['queued', 'in_progress'].includes(slow.status));
  const cancelled = await client.responses.cancel(slow.id);
  assert.equal(cancelled.status, 'cancelled');
  await client.responses.delete(slow.id);
  await assert.rejects(client.responses.retrieve(slow.id), (e) => e.status === 404);
}

async function StructuredTests(client, model) {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      age: { type: 'integer' },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
    },
    required: ['name', 'age', 'tags'],
  };
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Describe a person as JSON.' }], max_tokens: 60, temperature: 1, seed: 9,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
  });
  const value = JSON.parse(r.choices[0].message.content);
  assert.equal(typeof value.name, 'string');
  assert.ok(Number.isInteger(value.age));
  assert.ok(Array.isArray(value.tags) && value.tags.every((t) => t === 'a' || t === 'b'));
  await assert.rejects(client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'x' }],
    response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'string', pattern: 'a+' } } },
  }), (e) => e.status === 400 && /pattern/.test(e.message));
}

const { proc } = await StartServe(llmsync, work, { kvRamMb: 16 }).then(async (server) => {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'local', maxRetries: 0 });
  try {
    const model = await ChatTests(client);
    console.log('chat completions: ok');
    await ResponseTests(client, model);
    console.log('responses: ok');
    if (process.env.LLMSYNC_SKIP_STRUCTURED !== '1') {
      await StructuredTests(client, model);
      console.log('structured output: ok');
    }
  } catch (e) {
    server.proc.kill('SIGKILL');
    console.error(e);
    console.error('server log: ' + server.logPath);
    process.exit(1);
  }
  return server;
});
proc.kill('SIGTERM');
console.log('openai client test passed');
