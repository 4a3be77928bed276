// Robustness run: N requests from C concurrent clients on loopback, mixing
// chat (whole and streamed), completions, clients that hang up mid-answer,
// the malformed list (malformed.mjs) and a burst that overflows the queue.
// Pass: the server never crashes, every request is answered or cleanly
// rejected, greedy answers under load equal the same requests made alone
// (no mixed-up outputs), and afterwards no connection, sequence or file
// descriptor is left behind.
//
//   node load.mjs [--requests 5000] [--clients 32] [--parallel 4]
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { startServer, metrics, rawRequest, sleep, MODEL_ID } from './lib.mjs';
import { malformedCases } from './malformed.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const N = arg('--requests', 5000), CLIENTS = arg('--clients', 32), PARALLEL = arg('--parallel', 4);
const KEY = 'sk-load';
const MAX_QUEUE = 48;
const server = await startServer(['--parallel', String(PARALLEL), '--ctx', '1024', '--api-key', KEY, '--max-queue', String(MAX_QUEUE),
  '--idle-timeout', '3', '--max-body', '1048576', '-t', process.env.THREADS || '2']);
const H = { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` };
const cases = malformedCases({ model: MODEL_ID, key: KEY, port: server.port });
const fds = () => readdirSync(`/proc/${server.proc.pid}/fd`).length;

const post = (path, body, signal) => fetch(`${server.url}${path}`, { method: 'POST', headers: H, body: JSON.stringify(body), signal });
const topics = ['the sea', 'a cat', 'rain', 'Paris', 'numbers', 'music', 'trees', 'the moon'];
const greedyBody = (i) => ({ model: MODEL_ID, temperature: 0, max_tokens: 3 + (i % 4),
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Tell me about ${topics[i % topics.length]}.` }] });

// reference answers, each computed alone before the load
const reference = [];
for (let i = 0; i < topics.length * 4; i++) {
  const r = await post('/v1/chat/completions', greedyBody(i));
  reference.push((await r.json()).choices[0].message.content);
}
const fdsBefore = fds();
const errors5xxBefore = (await metrics(server.url, KEY))['gemma4_requests_total{status="5xx"}']; // 503s while loading

const counts = {};
const count = (k) => { counts[k] = (counts[k] || 0) + 1; };
const failures = [];
const fail = (what) => { failures.push(what); count('FAILED'); };
const ttft = [];
let malformedNext = 0;

async function readStream(r, abortAfter, ac) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '', chunks = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (++chunks === abortAfter) { ac.abort(); return null; }
  }
  return text;
}

function checkSse(text, i, chat) {
  if (!text.endsWith('data: [DONE]\n\n')) return fail(`#${i}: stream did not end with [DONE]`);
  let content = '';
  for (const ev of text.split('\n\n')) {
    if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
    const o = JSON.parse(ev.slice(6));
    if (o.error) return fail(`#${i}: stream error ${o.error.message}`);
    for (const c of o.choices) content += chat ? (c.delta.content || '') : c.text;
  }
  return content;
}

async function one(i) {
  const kind = i % 20;
  const ac = new AbortController();
  try {
    if (kind < 6) { // whole chat answer, checked against the reference
      const k = i % reference.length;
      const r = await post('/v1/chat/completions', greedyBody(k));
      if (r.status === 429) return count('429');
      const o = await r.json();
      if (r.status !== 200) return fail(`#${i}: status ${r.status} ${JSON.stringify(o)}`);
      if (o.choices[0].message.content !== reference[k]) return fail(`#${i}: answer differs from the same request alone`);
      if (o.usage.total_tokens !== o.usage.prompt_tokens + o.usage.completion_tokens) return fail(`#${i}: usage`);
      count('chat');
    } else if (kind < 10) { // streamed chat, checked against the reference
      const k = i % reference.length;
      const t0 = performance.now();
      const r = await post('/v1/chat/completions', { ...greedyBody(k), stream: true });
      if (r.status === 429) return count('429');
      if (r.status !== 200) return fail(`#${i}: status ${r.status}`);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let text = '', first = true;
      for (;;) {
        const { value, done } = await reader.read().catch((e) => { throw new Error(`${e} (cause ${e.cause}) after ${JSON.stringify(text.slice(-300))}`); });
        if (done) break;
        text += dec.decode(value, { stream: true });
        if (first && /"(content|reasoning_content)":"[^"]|"tool_calls":\[/.test(text)) { ttft.push(performance.now() - t0); first = false; }
      }
      const content = checkSse(text, i, true);
      if (content === undefined) return;
      if (content !== reference[k]) return fail(`#${i}: streamed answer differs from the same request alone`);
      count('chat stream');
    } else if (kind < 12) { // completions, sampled
      const stream = kind === 11;
      const r = await post('/v1/completions', { model: MODEL_ID, prompt: `Item ${i}:`, max_tokens: 4, seed: i, stream });
      if (r.status === 429) return count('429');
      if (r.status !== 200) return fail(`#${i}: status ${r.status}`);
      if (stream) { if (checkSse(await r.text(), i, false) === undefined) return; } else assert.equal((await r.json()).choices.length, 1);
      count('completion');
    } else if (kind === 12) { // hangs up after the first chunk of a long answer
      const r = await post('/v1/chat/completions', { ...greedyBody(i), max_tokens: 200, stream: true }, ac.signal);
      if (r.status === 429) return count('429');
      if (r.status !== 200) return fail(`#${i}: status ${r.status}`);
      await readStream(r, 2, ac);
      count('disconnect mid-stream');
    } else if (kind === 13) { // hangs up while a whole answer is generated
      setTimeout(() => ac.abort(), 30);
      const r = await post('/v1/chat/completions', { ...greedyBody(i), max_tokens: 200 }, ac.signal).catch((e) => e);
      if (r instanceof Response && r.status !== 200 && r.status !== 429) return fail(`#${i}: status ${r.status}: ${await r.text()}`);
      if (r instanceof Response) await r.text().catch(() => {});
      count('disconnect while waiting');
    } else if (kind < 18) { // one of the malformed requests
      const c = cases[malformedNext++ % cases.length];
      const res = await rawRequest(server.port, c.pieces, { delayMs: c.delayMs, timeoutMs: c.timeoutMs ?? 10000, endAfter: c.endAfter });
      const got = res.status ?? (res.how === 'timeout' ? 'timeout' : 'closed');
      if (!c.expect.includes(got)) return fail(`malformed "${c.name}": got ${got}, expected ${c.expect.join('/')}: ${res.text.slice(0, 200)}`);
      // our own rejections carry OpenAI's error body; libmicrohttpd's (bad HTTP) are plain
      if ([401, 404, 405, 413, 429].includes(got) && !/"error":\{"message":/.test(res.text))
        return fail(`malformed "${c.name}": ${got} without an OpenAI error body`);
      count('malformed');
    } else { // the small endpoints
      const path = ['/health', '/v1/models'][kind - 18];
      const r = await fetch(`${server.url}${path}`, { headers: H });
      if (r.status !== 200) return fail(`#${i}: ${path} status ${r.status}`);
      await r.json();
      count('get');
    }
  } catch (e) {
    if (e.name === 'AbortError') return count(kind === 12 ? 'disconnect mid-stream' : 'disconnect while waiting');
    fail(`#${i}: ${e}`);
  }
}

const t0 = Date.now();
let next = 0;
await Promise.all(Array.from({ length: CLIENTS }, async () => { while (next < N) await one(next++); }));
const loadSeconds = (Date.now() - t0) / 1000;

// a burst larger than the queue: the excess gets 429, the rest answers
const burst = await Promise.all(Array.from({ length: MAX_QUEUE + PARALLEL + 40 }, (_, i) =>
  post('/v1/chat/completions', { ...greedyBody(i), max_tokens: 2 }).then(async (r) => { await r.text(); return r.status; }, (e) => String(e))));
const burstCounts = burst.reduce((m, s) => ({ ...m, [s]: (m[s] || 0) + 1 }), {});
if (!burstCounts[429] || Object.keys(burstCounts).some((s) => s !== '200' && s !== '429')) fail(`burst: ${JSON.stringify(burstCounts)}`);

// nothing left behind
let m;
for (let i = 0; i < 100; i++) {
  m = await metrics(server.url, KEY);
  if (m.gemma4_requests_running === 0 && m.gemma4_queue_depth === 0 && m.gemma4_http_connections_open <= 1) break;
  await sleep(100);
}
if (m.gemma4_requests_running !== 0 || m.gemma4_queue_depth !== 0) fail(`left running ${m.gemma4_requests_running}, queued ${m.gemma4_queue_depth}`);
const errors5xx = m['gemma4_requests_total{status="5xx"}'] - errors5xxBefore;
if (errors5xx) fail(`${errors5xx} answers with status 5xx`);
if (m.gemma4_http_connections_open > 1) fail(`${m.gemma4_http_connections_open} connections still open`);
const fdsAfter = fds();
if (fdsAfter > fdsBefore + 1) fail(`file descriptors: ${fdsBefore} before, ${fdsAfter} after`);
if (!server.alive()) fail('the server died');
const { code, signal } = await server.stop();
if (code !== 0) fail(`server exit code ${code} signal ${signal}: ${server.stderr().slice(-2000)}`);

ttft.sort((a, b) => a - b);
const pct = (p) => ttft.length ? ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))].toFixed(0) : '-';
console.log(`${N} requests from ${CLIENTS} clients in ${loadSeconds.toFixed(1)} s (${(N / loadSeconds).toFixed(0)} req/s), ${cases.length} malformed kinds`);
console.log(`outcomes: ${JSON.stringify(counts)}; burst of ${burst.length}: ${JSON.stringify(burstCounts)}`);
console.log(`streamed time to first token under load: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
console.log(`server: ${m.gemma4_completion_tokens_total} tokens generated, ${m.gemma4_requests_cancelled_total} cancelled, ` +
  `prompt tokens cached ${m.gemma4_prompt_tokens_cached_total} of ${m.gemma4_prompt_tokens_total}; fds ${fdsBefore} -> ${fdsAfter}`);
for (const f of failures.slice(0, 20)) console.log(`FAIL ${f}`);
if (failures.length) console.log(`server log:\n${server.stderr().slice(-3000)}`);
console.log(failures.length ? `${failures.length} failures` : 'robustness run passed');
process.exit(failures.length ? 1 : 0);
