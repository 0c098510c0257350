// Bounded load test of `codey serve` (loopback only): N concurrent clients
// stream chat completions through the real `openai` client for a fixed time.
// Every request must end in a complete stream or a clean rejection (429/503
// with Retry-After, which the client honours before trying again).
// Usage: node load_test.mjs --url http://127.0.0.1:PORT --model NAME
//          [--clients 8] [--seconds 60] [--max-tokens 64] [--api-key KEY]
// Prints one JSON summary line; exits 1 if any request failed otherwise.
import OpenAI from 'openai';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const url = args.url;
const model = args.model;
const clients = Number(args.clients ?? 8);
const seconds = Number(args.seconds ?? 60);
const maxTokens = Number(args['max-tokens'] ?? 64);
if (!url || !model) {
  console.error('usage: node load_test.mjs --url URL --model NAME [--clients 8] [--seconds 60] [--max-tokens 64]');
  process.exit(2);
}
const host = new URL(url).hostname;
if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
  console.error('load_test: loopback addresses only');
  process.exit(2);
}

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: args['api-key'] ?? 'none', maxRetries: 0, timeout: 120_000 });
const stopAt = Date.now() + seconds * 1000;
const stats = { requests: 0, ok: 0, rejected: 0, failed: 0, tokens: 0, ttft: [], latency: [], errors: [] };
const prompts = ['Write a function that sorts a list.', 'Explain recursion.', 'def parse(s):', 'Summarize HTTP.'];

async function one(i) {
  const t0 = performance.now();
  stats.requests++;
  let first = 0, tokens = 0, finish = null;
  try {
    const stream = await client.chat.completions.create({
      model, stream: true, max_tokens: maxTokens, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: prompts[i % prompts.length] }],
    });
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.content && !first) first = performance.now();
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    if (!finish || !usage) throw new Error(`stream ended without finish_reason/usage (${finish})`);
    tokens = usage.completion_tokens;
    stats.ok++;
    stats.tokens += tokens;
    if (first) stats.ttft.push(first - t0);
    stats.latency.push(performance.now() - t0);
  } catch (e) {
    if (e instanceof OpenAI.APIError && (e.status === 429 || e.status === 503)) {
      const retry = Number(e.headers?.get?.('retry-after') ?? e.headers?.['retry-after']);
      if (!(retry > 0)) {
        stats.failed++;
        stats.errors.push(`${e.status} without Retry-After`);
        return;
      }
      stats.rejected++;
      await new Promise((r) => setTimeout(r, Math.min(retry * 1000, 2000)));
      return;
    }
    stats.failed++;
    if (stats.errors.length < 10) stats.errors.push(String(e?.message ?? e));
  }
}

async function worker(i) {
  let n = 0;
  while (Date.now() < stopAt) await one(i * 1000 + n++);
}

const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, (_, i) => worker(i)));
const wall = (performance.now() - t0) / 1000;
const pct = (xs, p) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const summary = {
  clients, seconds: Number(wall.toFixed(1)), requests: stats.requests, ok: stats.ok, rejected: stats.rejected,
  failed: stats.failed, tokens: stats.tokens, tokens_per_s: Number((stats.tokens / wall).toFixed(1)),
  ttft_ms: { p50: Math.round(pct(stats.ttft, 50)), p95: Math.round(pct(stats.ttft, 95)), max: Math.round(pct(stats.ttft, 100)) },
  latency_ms: { p50: Math.round(pct(stats.latency, 50)), p95: Math.round(pct(stats.latency, 95)), max: Math.round(pct(stats.latency, 100)) },
  errors: stats.errors,
};
console.log(JSON.stringify(summary));
process.exit(stats.failed > 0 || stats.ok === 0 ? 1 : 0);
