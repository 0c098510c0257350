// Drives `codey serve`'s model management with the real `ollama` npm client:
// pull (streamed progress and not), list, generate with the pulled model,
// errors, delete. The server's Hub is a stand-in on loopback.
// Usage: node ollama_pull.mjs <base-url> <hf-model> <api-key>
import assert from 'node:assert/strict';
import { check } from './check.mjs';
import { connect, expectError } from './ollama_common.mjs';

const { ollama, model } = connect('ollama_pull.mjs');

await check('pull streams progress', async () => {
  const stream = await ollama.pull({ model, stream: true });
  const statuses = [];
  let bytes = null, last = null;
  for await (const part of stream) {
    statuses.push(part.status);
    if (part.digest && part.total) {
      assert.match(part.digest, /^sha256:[0-9a-f]{64}$/);
      assert.ok(part.completed <= part.total, `${part.completed} <= ${part.total}`);
      if (bytes) assert.ok(part.completed >= bytes.completed || part.digest !== bytes.digest, 'progress only grows');
      bytes = part;
    }
    last = part;
  }
  assert.equal(statuses[0], 'pulling manifest');
  assert.equal(last.status, 'success');
  assert.ok(bytes, 'progress lines with digest, total and completed');
  assert.equal(bytes.completed, bytes.total);
  assert.ok(statuses.includes('verifying sha256 digest'), statuses.join(' | '));
});

await check('pulled model is listed and runs', async () => {
  const list = await ollama.list();
  const m = list.models.find((x) => x.name === model);
  assert.ok(m, `${model} in ${list.models.map((x) => x.name).join(', ')}`);
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.family, 'llama');
  assert.ok(m.size > 0);
  const r = await ollama.generate({ model, prompt: 'def add(a, b):', options: { num_predict: 4, temperature: 0 } });
  assert.equal(r.done, true);
  assert.ok(r.eval_count >= 1);
});

await check('pull again is up to date', async () => {
  const r = await ollama.pull({ model });
  assert.equal(r.status, 'success');
});

await check('pull errors say what is wrong', async () => {
  const repo = model.slice(0, model.lastIndexOf(':'));
  await expectError(404, 'has no Q5_K_M quantization', () => ollama.pull({ model: `${repo}:Q5_K_M` }));
  await expectError(404, 'no repository', () => ollama.pull({ model: 'hf.co/nobody/nothing-GGUF:Q4_K_M' }));
  // Streaming too: the error comes before any progress, with its status.
  await expectError(404, 'has no Q5_K_M', () => ollama.pull({ model: `${repo}:Q5_K_M`, stream: true }));
});

await check('delete', async () => {
  await ollama.delete({ model });
  const list = await ollama.list();
  assert.ok(!list.models.find((x) => x.name === model), 'deleted models are not listed');
  await expectError(404, 'not found', () => ollama.delete({ model }));
  await expectError(404, 'not pulled', () => ollama.generate({ model, prompt: 'x' }));
});
