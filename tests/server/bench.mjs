// Server speed on a given model (not part of the test suite): output tokens/s
// at several numbers of concurrent streams, time to first token, and the
// prefix-reuse speed-up on a repeated system prompt.
//
//   GEMMA4=build/gemma4 SERVE_MODEL=/tmp/e2b.gguf node tests/server/bench.mjs [--seconds 40] [--tokens 32]
import { startServer, metrics, MODEL_ID } from './lib.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const SECONDS = arg('--seconds', 40), TOKENS = arg('--tokens', 32), LEVELS = [1, 4, 16];
const server = await startServer(['--parallel', '16', '--ctx', '4096', '-t', process.env.THREADS || '2']);
const H = { 'Content-Type': 'application/json' };

// One streamed request: [ms to the first text, tokens, ms total, cached prompt tokens].
// Throughput runs use /v1/completions: the chat output parser rightly holds
// back text until it knows what it is (a random model's leading newlines
// could start a tool call), which would blur the time to the first token.
async function stream(input, maxTokens) {
  const t0 = performance.now();
  const chat = Array.isArray(input);
  const r = await fetch(`${server.url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
    method: 'POST', headers: H,
    body: JSON.stringify({ model: MODEL_ID, [chat ? 'messages' : 'prompt']: input, max_tokens: maxTokens, temperature: 0,
      stream: true, stream_options: { include_usage: true } }),
  });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '', first = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (first === null && /"(content|reasoning_content|text)":"[^"]|"tool_calls":\[/.test(text)) first = performance.now() - t0;
  }
  const usage = JSON.parse(text.split('\n\n').filter((e) => e.includes('"usage":{')).pop().slice(6)).usage;
  return [first ?? performance.now() - t0, usage.completion_tokens, performance.now() - t0, usage.prompt_tokens_details.cached_tokens];
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const rows = [];
let q = 0;
for (const c of LEVELS) {
  const ttft = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, k) => {
    while (performance.now() - t0 < SECONDS * 1000) {
      const [first, n] = await stream(`Question ${q++} from client ${k}: tell me a story.`, TOKENS);
      ttft.push(first);
      tokens += n;
    }
  }));
  const s = (performance.now() - t0) / 1000;
  rows.push({ streams: c, requests: ttft.length, 'output tok/s': +(tokens / s).toFixed(1),
    'ttft p50 ms': Math.round(pct(ttft, 0.5)), 'ttft p99 ms': Math.round(pct(ttft, 0.99)) });
  console.log(JSON.stringify(rows[rows.length - 1]));
}

// prefix reuse: a long shared system prompt, then different questions
const system = { role: 'system', content: 'You are the support assistant of a hardware shop. ' + 'Answer politely, cite the manual, never guess prices. '.repeat(60) };
const ask = (i) => stream([system, { role: 'user', content: `Customer ${i} asks about order ${1000 + i}.` }], 1);
const cold = await ask(0);
const warm = [];
for (let i = 1; i <= 5; i++) warm.push(await ask(i));
const m = await metrics(server.url);
const warmTtft = pct(warm.map((w) => w[0]), 0.5);
console.log(JSON.stringify({ 'system prompt tokens (cached on repeat)': warm[0][3], 'cold ttft ms': Math.round(cold[0]),
  'warm ttft ms (median of 5)': Math.round(warmTtft), 'speed-up': +(cold[0] / warmTtft).toFixed(1) }));
console.log(`server: ${m.gemma4_completion_tokens_total} tokens, prompt tokens cached ${m.gemma4_prompt_tokens_cached_total} of ${m.gemma4_prompt_tokens_total}`);
await server.stop();
