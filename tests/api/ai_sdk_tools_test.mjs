// The Vercel AI SDK (`ai` + `@ai-sdk/openai`, chat completions provider) running a two-step agent
// against a real `llmsync serve`: step 1 must call a tool (toolChoice 'required'), the SDK runs the
// tool and sends its result, step 2 answers in text. Non-streaming (generateText) and streaming
// (streamText). Before issue 12 the SDK failed here with AI_ToolChoiceViolationError.
//   node ai_sdk_tools_test.mjs --llmsync BIN --npm-dir DIR --work DIR
import assert from 'node:assert/strict';
import path from 'node:path';

import { Arg, NpmRequire, StartServe } from './serve_helpers.mjs';

const llmsync = path.resolve(Arg('--llmsync'));
const npmDir = path.resolve(Arg('--npm-dir'));
const work = path.resolve(Arg('--work'));

const require = NpmRequire(npmDir);
const { generateText, streamText, tool, jsonSchema, stepCountIs } = require('ai');
const { createOpenAI } = require('@ai-sdk/openai');

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

const server = await StartServe(llmsync, work);
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
