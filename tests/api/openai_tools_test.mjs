// An agent loop through the official `openai` npm client against a real `llmsync serve`: tools →
// tool_calls (forced with tool_choice required / named, so random-weight models still call) →
// tool results → final answer, for chat completions (streaming and not) and the Responses API.
// Checks that arguments validate against the tool's schema, that streamed deltas add up to the
// non-streamed message, that no tool markup reaches `content`, that malformed tool requests are a
// 400 naming the field, and that the turn after a tool result reuses the previous prompt's tokens.
//
// Models: a Qwen3-shaped make-test model carrying Qwen3's own template (Hermes <tool_call> markup,
// <think> reasoning) when ../shared/vectors/tokenizer/ggml-vocab-qwen3.gguf exists, and a llama
// make-test model without a tool-aware template (the generic fallback).
//   node openai_tools_test.mjs --llmsync BIN --npm-dir DIR --work DIR [--qwen3-vocab FILE]
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { Arg, NpmRequire, StartServe } from './serve_helpers.mjs';

const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));
// ../shared next to the checkout, or LLMSYNC_SHARED_DIR (a worktree elsewhere).
let qwen3Vocab = Arg('--qwen3-vocab', '');
if (!fs.existsSync(qwen3Vocab) && process.env.LLMSYNC_SHARED_DIR) {
  qwen3Vocab = path.join(process.env.LLMSYNC_SHARED_DIR, 'vectors/tokenizer/ggml-vocab-qwen3.gguf');
}

const require = NpmRequire(npmDir);
let OpenAI;
try {
  OpenAI = require('openai').OpenAI;
} catch (e) {
  console.error(`the openai package is not installed in ${npmDir}: ${e.message}`);
  process.exit(1);
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const timeTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The time in a zone',
    parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] },
  },
};

// An independent check of the arguments against the schemas above.
function CheckArguments(name, args) {
  const v = JSON.parse(args);
  assert.equal(typeof v, 'object');
  if (name === 'get_weather') {
    assert.deepEqual(Object.keys(v).sort(), ['city', 'unit']);
    assert.equal(typeof v.city, 'string');
    assert.ok(v.unit === 'c' || v.unit === 'f');
  } else {
    assert.equal(name, 'get_time');
    assert.equal(typeof v.zone, 'string');
  }
  return v;
}

function NoMarkup(text) {
  if (text === null) return;
  for (const m of ['<tool_call>', '</tool_call>', '<think>', '</think>', '[TOOL_CALLS]']) {
    assert.ok(!text.includes(m), `markup ${m} leaked into content: ${JSON.stringify(text)}`);
  }
}

const figures = {};

async function ChatLoop(client, model, label) {
  const messages = [
    { role: 'system', content: 'You are a weather agent. Call tools when useful.' },
    { role: 'user', content: 'What is the weather in Paris?' },
  ];
  const tools = [weatherTool, timeTool];
  const request = {
    model, messages, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, seed: 11, temperature: 1,
  };
  const first = await client.chat.completions.create(request);
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(first));
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.ok(call.id.length > 0);
  CheckArguments(call.function.name, call.function.arguments);
  assert.equal(choice.message.content, null);
  NoMarkup(choice.message.content);

  // The same request streamed: the deltas add up to the same message and the same call.
  const stream = await client.chat.completions.create({ ...request, stream: true });
  let content = '';
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.content) content += c.delta.content;
    for (const t of c.delta.tool_calls ?? []) {
      calls[t.index] ??= { id: '', name: '', arguments: '' };
      if (t.id) calls[t.index].id = t.id;
      if (t.function?.name) calls[t.index].name += t.function.name;
      if (t.function?.arguments) calls[t.index].arguments += t.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(content, '');
  assert.deepEqual(calls, [{ id: call.id, name: call.function.name, arguments: call.function.arguments }]);

  // Named choice picks that function.
  const named = await client.chat.completions.create({
    ...request, tool_choice: { type: 'function', function: { name: 'get_time' } }, seed: 5,
  });
  assert.equal(named.choices[0].message.tool_calls[0].function.name, 'get_time');
  CheckArguments('get_time', named.choices[0].message.tool_calls[0].function.arguments);

  // The tool result, then the final answer: the whole previous prompt comes from the cache.
  messages.push(choice.message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: '{"temperature": 21, "sky": "clear"}' });
  const second = await client.chat.completions.create({ model, messages, tools, tool_choice: 'none', max_tokens: 8, seed: 3 });
  assert.ok(second.choices[0].finish_reason === 'stop' || second.choices[0].finish_reason === 'length');
  assert.equal(typeof second.choices[0].message.content, 'string');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  NoMarkup(second.choices[0].message.content);
  const turn1 = first.usage.prompt_tokens + first.usage.completion_tokens;
  assert.ok(second.llmsync.reused_nodes >= 3, JSON.stringify(second.llmsync));
  assert.ok(second.llmsync.reused_tokens >= turn1 - 1, `reused ${second.llmsync.reused_tokens} of ${turn1}`);
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= turn1 - 1,
    `cached ${second.usage.prompt_tokens_details.cached_tokens} of turn 1's ${turn1}`);
  // The cost of constraining: decode speed of the constrained call vs the same prompt unconstrained.
  const free = await client.chat.completions.create({ ...request, tool_choice: 'none', max_tokens: 48 });
  figures[`${label}.chat`] = {
    constrained_decode_tokens_per_s: first.llmsync.runs[0].cost.decode_tokens_per_s,
    unconstrained_decode_tokens_per_s: free.llmsync.runs[0].cost.decode_tokens_per_s,
    turn1_prompt_tokens: first.usage.prompt_tokens,
    turn1_completion_tokens: first.usage.completion_tokens,
    turn2_prompt_tokens: second.usage.prompt_tokens,
    turn2_cached_tokens: second.usage.prompt_tokens_details.cached_tokens,
    turn2_reused_tokens: second.llmsync.reused_tokens,
  };

  await ParallelCalls(client, model, label, messages.slice(0, 2), tools, label === 'qwen3');

  // Malformed tool requests are 400s naming the field.
  const bad = [
    [{ tools: 'garbage' }, 'tools'],
    [{ tools: [weatherTool, weatherTool] }, 'tools[1].function.name'],
    [{ tools, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice.function.name'],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { d: { type: 'string', format: 'date' } } } } }] },
      'tools[0].function.parameters'],
  ];
  for (const [fields, param] of bad) {
    await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 4, ...fields }),
      (e) => e.status === 400 && e.param === param, `expected a 400 naming ${param}`);
  }
}

// Reads a streamed chat completion into { content, reasoning, calls, finish }.
async function ReadChatStream(stream) {
  const out = { content: '', reasoning: '', calls: [], finish: null };
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.content) out.content += c.delta.content;
    if (c.delta.reasoning_content) out.reasoning += c.delta.reasoning_content;
    for (const t of c.delta.tool_calls ?? []) {
      out.calls[t.index] ??= { id: '', name: '', arguments: '' };
      if (t.id) out.calls[t.index].id = t.id;
      if (t.function?.name) out.calls[t.index].name += t.function.name;
      if (t.function?.arguments) out.calls[t.index].arguments += t.function.arguments;
    }
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}

// parallel_tool_calls (the default): one assistant turn may hold several calls, each valid, the
// same streamed and not; the client sends every result and the next turn is a cache hit. Without
// an end-of-turn token (the llama test model) nothing can follow a call but the end of the run,
// so such a model writes exactly one.
async function ParallelCalls(client, model, label, history, tools, hasEndToken) {
  let found = null;
  for (let seed = 1; seed <= 24 && !found; ++seed) {
    const request = { model, messages: history, tools, tool_choice: 'required', max_tokens: 400, seed, temperature: 1 };
    const r = await client.chat.completions.create(request);
    const calls = r.choices[0].message.tool_calls;
    assert.ok(calls.length >= 1 && calls.length <= 8, JSON.stringify(r));
    for (const c of calls) CheckArguments(c.function.name, c.function.arguments);
    assert.equal(new Set(calls.map((c) => c.id)).size, calls.length, 'call ids are distinct');
    if (calls.length >= 2) found = { request, response: r };
  }
  if (!hasEndToken) {  // a turn can only end with a call here: one call per turn (PROTOCOL.md)
    assert.equal(found, null, 'a model without an end-of-turn token wrote several calls');
    return;
  }
  assert.ok(found, 'no seed in 1..24 gave two calls in one turn');
  const message = found.response.choices[0].message;
  assert.equal(found.response.choices[0].finish_reason, 'tool_calls');
  assert.equal(message.content, null);
  const streamed = await ReadChatStream(await client.chat.completions.create({ ...found.request, stream: true }));
  assert.equal(streamed.finish, 'tool_calls');
  assert.equal(streamed.content, '');
  assert.deepEqual(streamed.calls, message.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })));
  // Every result, then the answer: the turn with several calls is reused whole.
  const messages = [...history, message];
  for (const c of message.tool_calls) messages.push({ role: 'tool', tool_call_id: c.id, content: `{"ok": "${c.function.name}"}` });
  const next = await client.chat.completions.create({ model, messages, tools, tool_choice: 'none', max_tokens: 4, seed: 3 });
  const turn1 = found.response.usage.prompt_tokens + found.response.usage.completion_tokens;
  assert.ok(next.usage.prompt_tokens_details.cached_tokens >= turn1 - 1,
    `cached ${next.usage.prompt_tokens_details.cached_tokens} of the parallel turn's ${turn1}`);
  figures[`${label}.parallel`] = {
    calls: message.tool_calls.length, seed: found.request.seed,
    turn1_prompt_tokens: found.response.usage.prompt_tokens,
    turn1_completion_tokens: found.response.usage.completion_tokens,
    turn2_prompt_tokens: next.usage.prompt_tokens,
    turn2_cached_tokens: next.usage.prompt_tokens_details.cached_tokens,
  };
}

// The Responses stream through the openai package's streaming helper: contiguous sequence numbers,
// function_call items announced, argument deltas and done events, and a final response equal to
// the non-streamed one (same seed).
async function ResponsesStream(client, request, expected) {
  const stream = client.responses.stream(request);
  const events = [];
  for await (const e of stream) events.push(e);
  const final = await stream.finalResponse();
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `event ${i} is ${e.type} #${e.sequence_number}`));
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'response.created');
  assert.equal(types[types.length - 1], 'response.completed');
  const calls = expected.output.filter((o) => o.type === 'function_call');
  const added = events.filter((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
  const argsDone = events.filter((e) => e.type === 'response.function_call_arguments.done');
  const itemDone = events.filter((e) => e.type === 'response.output_item.done' && e.item.type === 'function_call');
  assert.equal(added.length, calls.length, types.join(' '));
  assert.equal(argsDone.length, calls.length);
  assert.equal(itemDone.length, calls.length);
  for (let k = 0; k < calls.length; ++k) {
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta' && e.output_index === added[k].output_index);
    assert.equal(deltas.map((e) => e.delta).join(''), calls[k].arguments);
    assert.equal(argsDone[k].arguments, calls[k].arguments);
    assert.equal(itemDone[k].item.call_id, calls[k].call_id);
    assert.equal(final.output[added[k].output_index].type, 'function_call');
  }
  // Item ids name the run (two runs here); everything else is the same generation.
  // (the helper adds parsed_arguments to function calls)
  const strip = (r) => r.output.map(({ id, parsed_arguments: _, ...rest }) => rest);
  assert.deepEqual(strip(final), strip(expected));
  // Resuming after any event replays exactly the rest.
  const cut = Math.floor(events.length / 2);
  const resumed = await fetch(`${client.baseURL}/responses/${final.id}?stream=true&starting_after=${cut}`);
  const text = await resumed.text();
  const seqs = [...text.matchAll(/"sequence_number":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(seqs, events.slice(cut + 1).map((e) => e.sequence_number));
  return final;
}

async function ResponsesLoop(client, model, label) {
  const tools = [
    { type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: weatherTool.function.parameters },
  ];
  const input = [{ role: 'user', content: 'Weather in Oslo, please.' }];
  const firstRequest = { model, input, tools, tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: 200, seed: 21 };
  const first = await client.responses.create(firstRequest);
  assert.equal(first.status, 'completed', JSON.stringify(first));
  const calls = first.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  assert.equal(calls[0].name, 'get_weather');
  CheckArguments('get_weather', calls[0].arguments);
  for (const item of first.output) {
    if (item.type === 'message') for (const part of item.content) NoMarkup(part.text);
  }
  await ResponsesStream(client, firstRequest, first);
  // Several calls in one response, streamed.
  for (let seed = 1; seed <= 24; ++seed) {
    const request = { model, input, tools, tool_choice: 'required', max_output_tokens: 400, seed };
    const r = await client.responses.create(request);
    if (r.output.filter((o) => o.type === 'function_call').length < 2) continue;
    await ResponsesStream(client, request, r);
    figures[`${label}.responses_parallel_seed`] = seed;
    break;
  }
  if (label === 'qwen3') {  // the llama test model has no end-of-turn token: one call per turn
    assert.ok(figures[`${label}.responses_parallel_seed`], 'no seed in 1..24 gave two function_call items');
  }
  // Stateless: re-send the input, the call, and its output.
  const next = [...input, { type: 'function_call', call_id: calls[0].call_id, name: calls[0].name, arguments: calls[0].arguments },
    { type: 'function_call_output', call_id: calls[0].call_id, output: '{"temperature": 4}' }];
  const second = await client.responses.create({ model, input: next, tools, tool_choice: 'none', max_output_tokens: 8, seed: 2 });
  assert.ok(second.status === 'completed' || second.status === 'incomplete');
  assert.equal(second.output.filter((o) => o.type === 'function_call').length, 0);
  const turn1 = first.usage.input_tokens + first.usage.output_tokens;
  assert.ok(second.usage.input_tokens_details.cached_tokens >= turn1 - 1,
    `cached ${second.usage.input_tokens_details.cached_tokens} of turn 1's ${turn1}`);
  // With previous_response_id: only the tool output is sent.
  const third = await client.responses.create({
    model, previous_response_id: first.id, tools, tool_choice: 'none', max_output_tokens: 8, seed: 2,
    input: [{ type: 'function_call_output', call_id: calls[0].call_id, output: '{"temperature": 4}' }],
  });
  assert.ok(third.status === 'completed' || third.status === 'incomplete');
  figures[`${label}.responses`] = {
    turn1_input_tokens: first.usage.input_tokens,
    turn1_output_tokens: first.usage.output_tokens,
    turn2_input_tokens: second.usage.input_tokens,
    turn2_cached_tokens: second.usage.input_tokens_details.cached_tokens,
  };
}

const configs = [];
if (qwen3Vocab && fs.existsSync(qwen3Vocab)) {
  configs.push(['qwen3', ['--arch', 'qwen3', '--vocab', qwen3Vocab, '--n-embd', '64', '--n-layer', '2',
    '--n-head', '4', '--n-head-kv', '2', '--n-ff', '128', '--seed', '7']]);
} else {
  console.log(`SKIP (qwen3 part): ${qwen3Vocab || '--qwen3-vocab'} not found; ../shared vectors are absent`);
}
configs.push(['llama-generic', ['--arch', 'llama', '--n-embd', '64', '--n-layer', '2', '--n-head', '4',
  '--n-head-kv', '2', '--n-ff', '128', '--seed', '7']]);

for (const [label, makeArgs] of configs) {
  const server = await StartServe(llmsync, path.join(work, label), { makeArgs });
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'local', maxRetries: 0 });
  try {
    const model = (await client.models.list()).data[0].id;
    await ChatLoop(client, model, label);
    console.log(`${label}: chat agent loop ok`);
    await ResponsesLoop(client, model, label);
    console.log(`${label}: responses agent loop ok`);
  } catch (e) {
    server.proc.kill('SIGKILL');
    console.error(e);
    console.error('server log: ' + server.logPath);
    process.exit(1);
  }
  server.proc.kill('SIGTERM');
}
console.log('figures ' + JSON.stringify(figures));
console.log('openai tools test passed');
