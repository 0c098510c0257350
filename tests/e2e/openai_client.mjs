// Drives `codey serve` with the real `openai` npm client: model listing,
// chat and completions (streaming and not), fill-in-the-middle, JSON mode,
// determinism with a seed, and errors as the client surfaces them.
// Usage: node openai_client.mjs <base-url> <model> <tools-model> [api-key]
// Exits non-zero with a message on the first failed check.
import OpenAI from 'openai';
import assert from 'node:assert/strict';
import { check } from './check.mjs';

const [baseURL, model, toolsModel, apiKey] = process.argv.slice(2);
if (!baseURL || !model || !toolsModel) {
  console.error('usage: node openai_client.mjs <base-url> <model> <tools-model> [api-key]');
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: apiKey ?? 'none', maxRetries: 0, timeout: 60_000 });
// The byte-level test vocabulary: 256 <|endoftext|>, 257 <|im_start|>, 258 <|im_end|>.
const noEnd = { '256': -100, '257': -100, '258': -100 };

async function expectError(status, substring, fn) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
    assert.equal(e.status, status, `status: ${e.message}`);
    if (substring) assert.ok(String(e.message).includes(substring), `"${e.message}" should mention "${substring}"`);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

await check('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `${model} in ${ids}`);
  assert.ok(ids.includes(toolsModel));
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
  assert.equal(one.object, 'model');
});

await check('chat non-streaming', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hi' }],
    max_tokens: 8, temperature: 0.7, seed: 1, logit_bias: noEnd,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
});

await check('chat seed is deterministic', async () => {
  const ask = () => client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, temperature: 1, seed: 42, logit_bias: noEnd,
  });
  const [a, b] = [await ask(), await ask()];
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const g1 = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 6, temperature: 0 });
  const g2 = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 6, temperature: 0 });
  assert.equal(g1.choices[0].message.content, g2.choices[0].message.content);
});

await check('chat streaming with usage', async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16, stream: true,
    stream_options: { include_usage: true }, logit_bias: noEnd,
  });
  let text = '', chunks = 0, finish = null, usage = null, role = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) { text += c.delta.content; chunks++; }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, 'assistant');
  assert.ok(chunks >= 1, 'content arrived in chunks');
  assert.equal(finish, 'length');
  assert.ok(usage, 'usage in the last chunk');
  assert.equal(usage.completion_tokens, 16);
  // The same request without streaming gives the same text for a fixed seed.
  const again = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16, seed: 9, logit_bias: noEnd,
  });
  const streamed = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 16, seed: 9, logit_bias: noEnd, stream: true,
  });
  let s = '';
  for await (const chunk of streamed) for (const c of chunk.choices) s += c.delta.content ?? '';
  assert.equal(s, again.choices[0].message.content);
});

await check('completions', async () => {
  const r = await client.completions.create({ model, prompt: 'def add(a, b):', max_tokens: 10, temperature: 0, logit_bias: noEnd });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.usage.completion_tokens, 10);
  const s = await client.completions.create({ model, prompt: 'import os\n', max_tokens: 10, stream: true, logit_bias: noEnd });
  let n = 0, finish = null;
  for await (const chunk of s) {
    assert.equal(chunk.object, 'text_completion');
    if (chunk.choices[0].text) n++;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(n >= 1);
  assert.equal(finish, 'length');
});

await check('completions fill-in-the-middle', async () => {
  const r = await client.completions.create({
    model, prompt: 'def f(x):\n    ', suffix: '\n    return y\n', max_tokens: 6, temperature: 0, logit_bias: noEnd,
  });
  assert.equal(r.usage.completion_tokens, 6);
  // prefix + <fim_pre> <fim_suf> <fim_mid>: more prompt tokens than the prefix alone
  const plain = await client.completions.create({ model, prompt: 'def f(x):\n    ', max_tokens: 1 });
  assert.ok(r.usage.prompt_tokens > plain.usage.prompt_tokens + 3);
});

await check('json mode', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Give me JSON' }], response_format: { type: 'json_object' },
    max_tokens: 200, seed: 3,
  });
  const text = r.choices[0].message.content;
  assert.ok(text.trimStart().startsWith('{'), text);
  if (r.choices[0].finish_reason === 'stop') {
    const v = JSON.parse(text);
    assert.equal(typeof v, 'object');
  }
});

await check('tools', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const r = await client.chat.completions.create({
    model: toolsModel, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools, max_tokens: 8,
  });
  assert.equal(r.choices[0].message.role, 'assistant');
  // A history with a call and its result renders through the template too.
  const r2 = await client.chat.completions.create({
    model: toolsModel, tools, max_tokens: 4, messages: [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' }],
  });
  assert.ok(r2.usage.prompt_tokens > r.usage.prompt_tokens);
  await expectError(400, 'tools', () => client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'x' }], tools, max_tokens: 4,
  }));
});

await check('errors', async () => {
  await expectError(404, 'no-such-model', () => client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
  const e = await expectError(400, 'temperature', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 7 }));
  assert.equal(e.param, 'temperature');
  await expectError(400, 'n:', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], n: 3 }));
  await expectError(400, 'json_schema', () => client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }));
  await expectError(400, 'messages', () => client.chat.completions.create({ model, messages: [] }));
  if (apiKey) {
    const bad = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'wrong', maxRetries: 0 });
    try {
      await bad.models.list();
      assert.fail('expected 401');
    } catch (err) {
      assert.equal(err.status, 401);
    }
  }
});

console.log('all openai checks passed');
