// Drives `codey serve` with the real `ollama` npm client: list, show, ps,
// version, generate and chat (streaming NDJSON and not), fill-in-the-middle,
// JSON format, load/unload by empty prompt, abort mid-stream, and errors.
// Usage: node ollama_client.mjs <base-url> <model> [api-key]
// Exits non-zero with a message on the first failed check.
import assert from 'node:assert/strict';
import { check } from './check.mjs';
import { connect, expectError } from './ollama_common.mjs';

const { ollama, model } = connect('ollama_client.mjs');

// No end-of-generation before num_predict: a fixed token count to check against.
const sample = { temperature: 0.8, seed: 5 };

await check('version', async () => {
  const v = await ollama.version();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
});

await check('list', async () => {
  const r = await ollama.list();
  const m = r.models.find((x) => x.name === model);
  assert.ok(m, `${model} listed`);
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.family, 'llama');
  assert.ok(m.size > 0);
  assert.ok(!Number.isNaN(Date.parse(m.modified_at)));
});

await check('show', async () => {
  const r = await ollama.show({ model });
  assert.ok(r.template.includes('<|im_start|>'), 'the chat template');
  assert.ok(r.capabilities.includes('completion'));
  assert.ok(r.capabilities.includes('insert'), 'the test vocabulary has FIM tokens');
  assert.equal(r.model_info['general.architecture'], 'llama');
  await expectError(404, 'nope', () => ollama.show({ model: 'nope' }));
});

await check('load by empty prompt, ps', async () => {
  const r = await ollama.generate({ model, prompt: '' });
  assert.equal(r.done, true);
  assert.equal(r.done_reason, 'load');
  const ps = await ollama.ps();
  const m = ps.models.find((x) => x.name === model);
  assert.ok(m, 'loaded model in ps');
  assert.ok(m.size > 0);
  assert.ok(!Number.isNaN(Date.parse(m.expires_at)));
});

await check('generate non-streaming', async () => {
  const r = await ollama.generate({ model, prompt: 'Write a haiku', options: { ...sample, num_predict: 8 } });
  assert.equal(r.done, true);
  assert.equal(typeof r.response, 'string');
  assert.ok(r.eval_count >= 1 && r.eval_count <= 8, `eval_count ${r.eval_count}`);
  assert.ok(r.prompt_eval_count > 0);
  assert.ok(r.total_duration > 0);
  if (r.eval_count === 8) assert.equal(r.done_reason, 'length');
});

await check('generate streaming', async () => {
  const stream = await ollama.generate({ model, prompt: 'Write a poem', stream: true, options: { ...sample, num_predict: 12 } });
  let text = '', parts = 0, last = null;
  for await (const part of stream) {
    if (part.status) continue;  // progress lines while loading / queued
    text += part.response;
    parts++;
    last = part;
  }
  assert.ok(parts >= 2, 'several NDJSON lines');
  assert.equal(last.done, true);
  assert.ok(last.eval_count >= 1 && last.eval_count <= 12);
  // raw, seed-fixed, greedy: the same text twice
  const a = await ollama.generate({ model, prompt: 'abc', raw: true, options: { temperature: 0, num_predict: 6 } });
  const b = await ollama.generate({ model, prompt: 'abc', raw: true, options: { temperature: 0, num_predict: 6 } });
  assert.equal(a.response, b.response);
});

await check('generate fill-in-the-middle', async () => {
  const r = await ollama.generate({ model, prompt: 'def f(x):\n    ', suffix: '\n    return y', options: { num_predict: 4 } });
  assert.equal(r.done, true);
});

await check('chat non-streaming and streaming', async () => {
  const messages = [{ role: 'system', content: 'terse' }, { role: 'user', content: 'hello' }];
  const r = await ollama.chat({ model, messages, options: { ...sample, num_predict: 6 } });
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.equal(r.done, true);
  const stream = await ollama.chat({ model, messages, stream: true, options: { ...sample, num_predict: 6 } });
  let content = '', last = null;
  for await (const part of stream) {
    if (part.status) continue;
    content += part.message.content;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(content, r.message.content, 'same seed, same text streamed or not');
});

await check('chat json format', async () => {
  const r = await ollama.chat({ model, messages: [{ role: 'user', content: 'json please' }], format: 'json', options: { num_predict: 200, seed: 1 } });
  assert.ok(r.message.content.trimStart().startsWith('{'), r.message.content);
  if (r.done_reason === 'stop') assert.equal(typeof JSON.parse(r.message.content), 'object');
});

await check('abort mid-stream', async () => {
  // Random weights may end a reply early; abort after the second chunk if it is still going.
  const stream = await ollama.generate({ model, prompt: 'Go on forever', stream: true, options: { num_predict: 3000 } });
  let n = 0, aborted = false;
  try {
    for await (const part of stream) {
      if (++n === 2 && !part.done) {
        aborted = true;
        stream.abort();
      }
    }
  } catch (e) {
    assert.equal(e.name, 'AbortError', String(e));
  }
  assert.ok(n >= 1);
  // The server is still there for the next request.
  const r = await ollama.generate({ model, prompt: 'x', raw: true, options: { num_predict: 2 } });
  assert.equal(r.done, true);
  console.log(`  (aborted: ${aborted})`);
});

await check('errors', async () => {
  await expectError(404, 'missing-model', () => ollama.generate({ model: 'missing-model', prompt: 'x' }));
  await expectError(400, 'options.top_k', () => ollama.generate({ model, prompt: 'x', options: { top_k: -5 } }));
  await expectError(400, 'images', () => ollama.generate({ model, prompt: 'x', images: ['aGVsbG8='] }));
  await expectError(404, 'codey pulls from Hugging Face', () => ollama.pull({ model: 'no-such-model-xyz' }));
});

await check('unload by keep_alive 0', async () => {
  // The aborted request above may take a moment to leave its slot (busy: 429).
  let r = null;
  for (let i = 0; i < 50 && !r; i++) {
    try {
      r = await ollama.generate({ model, prompt: '', keep_alive: 0 });
    } catch (e) {
      if (e.status_code !== 429) throw e;
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  assert.ok(r, 'unloaded within 5 s');
  assert.equal(r.done_reason, 'unload');
  let gone = false;
  for (let i = 0; i < 50 && !gone; i++) {
    const ps = await ollama.ps();
    gone = !ps.models.find((x) => x.name === model);
    if (!gone) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(gone, 'no longer in ps');
});

console.log('all ollama checks passed');
