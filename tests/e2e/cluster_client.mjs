// Load for the cluster test (tests/cluster/cluster_test.cc): the real
// `openai` and `ollama` clients through nginx, in turn OpenAI chat streams,
// OpenAI completions, Ollama chat streams and Ollama generate - each
// request with its own X-Request-Id ("<tag>-<n>") so the test can find it in
// nginx's access log. Records one JSON line per request in --out:
//   {id, kind, stream, started, complete, chunks, error, status}
// started: the response began (a stream's head arrived; a non-streaming
// reply is all or nothing); complete: it ended as the API says a finished
// response ends (finish_reason / done, with usage); error: what the client
// threw. With --solo MODEL the first request is a long stream of that model,
// and "solo-streaming" is appended to --progress once its first tokens arrived.
// Bounded: stops starting requests when --stop-file exists, after
// --max-requests, or after --seconds. Loopback only.
// Usage: node cluster_client.mjs --url URL --key KEY --model M --out FILE
//          [--concurrency 6] [--max-requests 400] [--seconds 120] [--max-tokens 64]
//          [--stop-file F] [--progress F] [--tag T] [--solo MODEL --solo-max-tokens N]
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import fs from 'node:fs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const url = args.url;
const key = args.key;
const model = args.model;
const out = args.out;
if (!url || !key || !model || !out) {
  console.error('usage: node cluster_client.mjs --url URL --key KEY --model M --out FILE [...]');
  process.exit(2);
}
const host = new URL(url).hostname;
if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
  console.error('cluster_client: loopback addresses only');
  process.exit(2);
}
const concurrency = Number(args.concurrency ?? 6);
const maxRequests = Number(args['max-requests'] ?? 400);
const stopAt = Date.now() + Number(args.seconds ?? 120) * 1000;
const maxTokens = Number(args['max-tokens'] ?? 64);
const tag = args.tag ?? 'req';
// The byte-level test vocabulary's end tokens: banned, so every request runs to max_tokens.
const noEnd = { '256': -100, '257': -100, '258': -100 };
const stopRequested = () => args['stop-file'] && fs.existsSync(args['stop-file']);
const progress = (line) => args.progress && fs.appendFileSync(args.progress, line + '\n');

const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120_000 });
// One Ollama client per request: its headers are per client.
const ollamaFor = (id) => new Ollama({ host: url, headers: { Authorization: `Bearer ${key}`, 'X-Request-Id': id } });

async function openaiStream(rec, m, tokens, onFirst) {
  const stream = await openai.chat.completions.create(
    { model: m, stream: true, max_tokens: tokens, logit_bias: noEnd, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: `Write a function number ${rec.id}.` }] },
    { headers: { 'X-Request-Id': rec.id } });
  rec.started = true;
  let finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.content) {
        if (rec.chunks++ === 0 && onFirst) onFirst();
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  rec.complete = finish === 'length' && usage?.completion_tokens === tokens;
  if (!rec.complete) rec.error = `stream ended without its finish (finish ${finish}, usage ${JSON.stringify(usage)})`;
}

async function openaiCompletion(rec) {
  const r = await openai.completions.create(
    { model, prompt: `def f${rec.id.replace(/\W/g, '_')}(`, max_tokens: maxTokens, logit_bias: noEnd },
    { headers: { 'X-Request-Id': rec.id } });
  rec.started = true;
  rec.chunks = 1;
  rec.complete = r.choices[0].finish_reason === 'length' && r.usage.completion_tokens === maxTokens;
  if (!rec.complete) rec.error = `incomplete completion ${JSON.stringify(r).slice(0, 300)}`;
}

async function ollamaChatStream(rec) {
  const stream = await ollamaFor(rec.id).chat({
    model, stream: true, messages: [{ role: 'user', content: `Explain ${rec.id}` }],
    options: { num_predict: maxTokens } });
  rec.started = true;
  let done = null;
  for await (const part of stream) {
    if (part.message?.content) rec.chunks++;
    if (part.done) done = part;
  }
  // Ollama has no logit_bias: an end token may stop it before num_predict.
  rec.complete = !!done && ['length', 'stop'].includes(done.done_reason) && done.eval_count <= maxTokens;
  if (!rec.complete) rec.error = `stream ended without done (${JSON.stringify(done)})`;
}

async function ollamaGenerate(rec) {
  const r = await ollamaFor(rec.id).generate({ model, prompt: `// ${rec.id}\n`, stream: false,
    options: { num_predict: maxTokens } });
  rec.started = true;
  rec.chunks = 1;
  rec.complete = r.done === true && ['length', 'stop'].includes(r.done_reason) && r.eval_count <= maxTokens;
  if (!rec.complete) rec.error = `incomplete generate ${JSON.stringify(r).slice(0, 300)}`;
}

const kinds = [
  ['openai-chat-stream', true, (rec) => openaiStream(rec, model, maxTokens)],
  ['openai-completion', false, openaiCompletion],
  ['ollama-chat-stream', true, ollamaChatStream],
  ['ollama-generate', false, ollamaGenerate],
];

const fd = fs.openSync(out, 'a');
let n = 0;
const counts = { requests: 0, complete: 0, failed: 0 };
async function run(kind, isStream, fn, id) {
  const rec = { id, kind, stream: isStream, started: false, complete: false, chunks: 0, error: null, status: null };
  try {
    await fn(rec);
  } catch (e) {
    rec.error = String(e?.message ?? e).slice(0, 300);
    rec.status = e?.status ?? e?.status_code ?? null;
    rec.complete = false;
  }
  counts.requests++;
  if (rec.complete) counts.complete++;
  else counts.failed++;
  fs.writeSync(fd, JSON.stringify(rec) + '\n');
}

async function worker() {
  while (!stopRequested() && Date.now() < stopAt && n < maxRequests) {
    const i = n++;
    const [kind, isStream, fn] = kinds[i % kinds.length];
    await run(kind, isStream, fn, `${tag}-${i}`);
  }
}

const jobs = [];
if (args.solo) {
  const tokens = Number(args['solo-max-tokens'] ?? 2000);
  jobs.push(run('solo-stream', true, (rec) => openaiStream(rec, args.solo, tokens, () => progress('solo-streaming')),
                `${tag}-solo`));
}
for (let w = 0; w < concurrency; w++) jobs.push(worker());
await Promise.all(jobs);
fs.closeSync(fd);
console.log(JSON.stringify(counts));
