// The Vercel AI SDK (`ai` + `@ai-sdk/openai`, chat completions provider) running a two-step agent
// against a real `llmsync serve`: step 1 must call a tool (toolChoice 'required'), the SDK runs the
// tool and sends its result, step 2 answers in text. Non-streaming (generateText) and streaming
// (streamText). Before issue 12 the SDK failed here with AI_ToolChoiceViolationError.
//   node ai_sdk_tools_test.mjs --llmsync BIN --npm-dir DIR --work DIR
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';

function Arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}
const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));

const require = createRequire(path.join(npmDir, 'package.json'));
const { generateText, streamText, tool, jsonSchema, stepCountIs } = require('ai');
const { createOpenAI } = require('@ai-sdk/openai');

function FreePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function StartServer() {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const model = path.join(work, 'model.gguf');
  execFileSync(llmsync, ['model', 'make-test', '--arch', 'llama', '--n-embd', '64', '--n-layer', '2', '--n-head', '4',
    '--n-head-kv', '2', '--n-ff', '128', '--seed', '7', '--out', model]);
  const port = await FreePort();
  const logPath = path.join(work, 'serve.log');
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(llmsync, ['serve', '--listen', `127.0.0.1:${port}`, '--model', model,
    '--data-dir', path.join(work, 'data'), '--threads', '1', '--kv-ram-mb', '64'], { stdio: ['ignore', log, log] });
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

const executed = [];
const tools = {
  get_weather: tool({
    description: 'The weather in a city',
    inputSchema: jsonSchema({
      type: 'object',
      properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    }),
    execute: async (input) => {
      executed.push(input);
      return { temperature: 21, unit: input.unit };
    },
  }),
};

function CheckSteps(steps) {
  assert.equal(steps.length, 2, `expected 2 steps, got ${steps.length}`);
  assert.equal(steps[0].finishReason, 'tool-calls');
  // parallel_tool_calls is on (OpenAI's default): the turn holds one or more calls, each executed.
  assert.ok(steps[0].toolCalls.length >= 1 && steps[0].toolCalls.length <= 8, steps[0].toolCalls.length);
  for (const call of steps[0].toolCalls) {
    assert.equal(call.toolName, 'get_weather');
    assert.equal(typeof call.input.city, 'string');
    assert.ok(call.input.unit === 'c' || call.input.unit === 'f');
  }
  assert.equal(steps[0].toolResults.length, steps[0].toolCalls.length);
  assert.equal(steps[1].toolCalls.length, 0);
  assert.ok(['stop', 'length'].includes(steps[1].finishReason), steps[1].finishReason);
}

const server = await StartServer();
try {
  const provider = createOpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'local' });
  const model = provider.chat('llmsync');
  const options = {
    model,
    tools,
    toolChoice: 'required',
    prepareStep: ({ stepNumber }) => (stepNumber === 0 ? {} : { toolChoice: 'none' }),
    stopWhen: stepCountIs(2),
    system: 'You are a weather agent.',
    prompt: 'What is the weather in Paris?',
    maxOutputTokens: 120,
    seed: 4,
    maxRetries: 0,
  };
  const result = await generateText(options);
  CheckSteps(result.steps);
  const calls = result.steps[0].toolCalls.length;
  assert.equal(typeof result.text, 'string');
  console.log('generateText: ok');

  const streamed = streamText(options);
  const steps = await streamed.steps;
  CheckSteps(steps);
  assert.equal(steps[0].toolCalls.length, calls);  // same seed, same calls, streamed or not
  assert.equal(typeof (await streamed.text), 'string');
  console.log('streamText: ok');
  assert.equal(executed.length, 2 * calls);
} catch (e) {
  server.proc.kill('SIGKILL');
  console.error(e);
  console.error('server log: ' + server.logPath);
  process.exit(1);
}
server.proc.kill('SIGTERM');
console.log('ai sdk tools test passed');
