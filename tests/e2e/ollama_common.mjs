// Shared by the scripts that drive `codey serve` with the `ollama` npm client.
import { Ollama } from 'ollama';
import assert from 'node:assert/strict';

// argv: <base-url> <model> [api-key]; exits 2 with the usage when missing.
export function connect(script) {
  const [host, model, apiKey] = process.argv.slice(2);
  if (!host || !model) {
    console.error(`usage: node ${script} <base-url> <model> [api-key]`);
    process.exit(2);
  }
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : undefined;
  return { ollama: new Ollama({ host, headers }), host, model, apiKey };
}

// fn must fail with this HTTP status and a message mentioning substring.
export async function expectError(status, substring, fn) {
  try {
    await fn();
  } catch (e) {
    assert.equal(e.status_code, status, `status: ${e.message}`);
    if (substring) assert.ok(String(e.message).includes(substring), `"${e.message}" should mention "${substring}"`);
    return;
  }
  assert.fail(`expected HTTP ${status}`);
}
