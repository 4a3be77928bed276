// Drives `gemma4 serve` with the official OpenAI Node SDK on a tiny random
// model with the real vocabulary. References are independent of the code
// path under test: streamed output against the whole answer, batched
// against solo runs, structured output against an independent JSON Schema
// validator (ajv), counters against what the client itself counted.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Ajv from 'ajv';
import { startServer, metrics, run, sleep, MODEL_ID } from './lib.mjs';

const KEY = 'sk-test-' + Math.random().toString(36).slice(2);
const server = await startServer(['--parallel', '8', '--ctx', '1024', '--api-key', KEY, '-t', process.env.THREADS || '2']);
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 120000 });
const greedy = { model: MODEL_ID, temperature: 0 };
const hello = [{ role: 'system', content: 'You are a terse assistant.' }, { role: 'user', content: 'Say hello.' }];

async function collectStream(stream) {
  const out = { content: '', reasoning: '', toolCalls: [], finish: null, usage: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.content) out.content += c.delta.content;
      if (c.delta?.reasoning_content) out.reasoning += c.delta.reasoning_content;
      if (c.delta?.tool_calls) out.toolCalls.push(...c.delta.tool_calls);
      if (c.text) out.content += c.text;
      if (c.finish_reason) out.finish = c.finish_reason;
    }
  }
  return out;
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Tokyo'] }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};

const tests = [
  ['GET /v1/models lists the model', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL_ID]);
  }],

  ['plain chat: shape, usage, token limit', async () => {
    const r = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 8 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL_ID);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 8);
    assert.ok(r.usage.prompt_tokens > 10);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  }],

  ['streamed chat equals the whole answer, usage included', async () => {
    const body = { ...greedy, messages: hello, max_tokens: 24 };
    const whole = await client.chat.completions.create(body);
    const s = await collectStream(await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }));
    assert.equal(s.content, whole.choices[0].message.content ?? '');
    assert.equal(s.finish, whole.choices[0].finish_reason);
    assert.ok(s.usage, 'usage chunk');
    assert.equal(s.usage.prompt_tokens, whole.usage.prompt_tokens);
    assert.equal(s.usage.completion_tokens, whole.usage.completion_tokens);
    assert.ok(s.chunks >= 3);
  }],

  ['completions endpoint, plain and streamed agree', async () => {
    const body = { ...greedy, prompt: 'The capital of France is', max_tokens: 12 };
    const whole = await client.completions.create(body);
    assert.equal(whole.object, 'text_completion');
    const s = await collectStream(await client.completions.create({ ...body, stream: true }));
    assert.equal(s.content, whole.choices[0].text);
    assert.equal(whole.usage.completion_tokens, 12);
  }],

  ['stop strings cut the answer where the text first contains them', async () => {
    const body = { ...greedy, messages: hello, max_tokens: 24 };
    const full = (await client.chat.completions.create(body)).choices[0].message.content;
    const chars = [...full];
    assert.ok(chars.length > 8, `answer long enough: ${JSON.stringify(full)}`);
    const stop = chars.slice(4, 7).join('');
    const expected = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...body, stop: [stop] });
    assert.equal(r.choices[0].message.content, expected);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const s = await collectStream(await client.chat.completions.create({ ...body, stop, stream: true }));
    assert.equal(s.content, expected);
  }],

  ['seeded sampling is reproducible', async () => {
    const body = { model: MODEL_ID, messages: hello, max_tokens: 16, temperature: 1, top_p: 0.9, top_k: 40, min_p: 0.01 };
    const a = await client.chat.completions.create({ ...body, seed: 42 });
    const b = await client.chat.completions.create({ ...body, seed: 42 });
    const c = await client.chat.completions.create({ ...body, seed: 43 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
  }],

  ['thinking switches: reasoning_effort and chat_template_kwargs', async () => {
    const off = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 1 });
    const on = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 1, reasoning_effort: 'high' });
    const kw = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 1, chat_template_kwargs: { enable_thinking: true } });
    assert.ok(on.usage.prompt_tokens > off.usage.prompt_tokens, 'the <|think|> marker is in the prompt');
    assert.equal(kw.usage.prompt_tokens, on.usage.prompt_tokens);
  }],

  ['8 concurrent greedy requests return exactly what each returns alone', async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: `Question number ${i}: ${'why '.repeat(i * 7)}is the sky blue?` },
    ]);
    const body = (messages) => ({ ...greedy, messages, max_tokens: 16 + 3 * (messages[1].content.length % 5) });
    const alone = [];
    for (const m of prompts) alone.push((await client.chat.completions.create(body(m))).choices[0].message.content);
    const together = await Promise.all(prompts.map((m, i) => i % 2
      ? client.chat.completions.create(body(m)).then((r) => r.choices[0].message.content)
      : client.chat.completions.create({ ...body(m), stream: true }).then(collectStream).then((s) => s.content)));
    assert.deepEqual(together, alone);
  }],

  ['prefix reuse: a repeated system prompt is served from the cache', async () => {
    const system = { role: 'system', content: 'You are a careful assistant. ' + 'Follow the rules. '.repeat(40) };
    const a = await client.chat.completions.create({ ...greedy, messages: [system, { role: 'user', content: 'First question?' }], max_tokens: 4 });
    const b = await client.chat.completions.create({ ...greedy, messages: [system, { role: 'user', content: 'A different one?' }], max_tokens: 4 });
    assert.ok(b.usage.prompt_tokens_details.cached_tokens >= a.usage.prompt_tokens - 12,
      `cached ${b.usage.prompt_tokens_details.cached_tokens} of ${b.usage.prompt_tokens}`);
    // the same request from scratch and from the cache agree
    const again = await client.chat.completions.create({ ...greedy, messages: [system, { role: 'user', content: 'First question?' }], max_tokens: 4 });
    assert.equal(again.choices[0].message.content, a.choices[0].message.content);
    assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0);
  }],

  ['tool messages round trip through the template (auto)', async () => {
    const messages = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
    ];
    const r = await client.chat.completions.create({ ...greedy, messages, tools: [weatherTool], max_tokens: 8 });
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.usage.prompt_tokens > 40);
  }],

  ['tool call forced (required / named) -> tool message -> answer', async () => {
    const messages = [{ role: 'user', content: 'What is the weather in Tokyo?' }];
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
      const r = await client.chat.completions.create({ ...greedy, messages, tools: [weatherTool], tool_choice, max_tokens: 64 });
      const msg = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.equal(msg.tool_calls.length >= 1, true);
      const call = msg.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments);
      const validate = new Ajv().compile(weatherTool.function.parameters);
      assert.ok(validate(args), JSON.stringify(validate.errors));
      const answer = await client.chat.completions.create({
        ...greedy, tools: [weatherTool], max_tokens: 8,
        messages: [...messages, msg, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 18}' }],
      });
      assert.equal(typeof answer.choices[0].message.content, 'string');
      // streamed, the call arrives as a tool_calls delta
      const s = await collectStream(await client.chat.completions.create({ ...greedy, messages, tools: [weatherTool], tool_choice, max_tokens: 64, stream: true }));
      assert.equal(s.finish, 'tool_calls');
      assert.equal(s.toolCalls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(s.toolCalls[0].function.arguments), args);
    }
  }],

  ['response_format json_schema output parses and validates', async () => {
    const schema = {
      type: 'object',
      properties: { color: { type: 'string', enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' }, n: { type: 'integer', enum: [1, 2, 3] } },
      required: ['color', 'ok', 'n'],
      additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      ...greedy, messages: [{ role: 'user', content: 'Pick a color.' }], max_tokens: 200,
      response_format: { type: 'json_schema', json_schema: { name: 'pick', schema, strict: true } },
    });
    const value = JSON.parse(r.choices[0].message.content);
    const validate = new Ajv().compile(schema);
    assert.ok(validate(value), JSON.stringify(validate.errors));
    const any = await client.chat.completions.create({
      ...greedy, messages: [{ role: 'user', content: 'Some JSON.' }], max_tokens: 40, response_format: { type: 'json_object' },
    });
    if (any.choices[0].finish_reason === 'stop') JSON.parse(any.choices[0].message.content);
  }],

  ['a client that disconnects mid-stream frees its sequence', async () => {
    const before = await metrics(server.url, KEY);
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 600, stream: true }, { signal: ac.signal });
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 3) ac.abort();
    } catch (e) {
      assert.ok(e.name === 'AbortError' || /abort/i.test(String(e)), String(e));
    }
    let m;
    for (let i = 0; i < 50; i++) {
      m = await metrics(server.url, KEY);
      if (m.gemma4_requests_running === 0 && m.gemma4_requests_cancelled_total > before.gemma4_requests_cancelled_total) break;
      await sleep(100);
    }
    assert.equal(m.gemma4_requests_running, 0);
    assert.equal(m.gemma4_requests_cancelled_total, before.gemma4_requests_cancelled_total + 1);
    assert.ok(m.gemma4_completion_tokens_total - before.gemma4_completion_tokens_total < 600, 'generation stopped early');
    // and the server goes on answering
    const r = await client.chat.completions.create({ ...greedy, messages: hello, max_tokens: 2 });
    assert.equal(r.usage.completion_tokens, 2);
  }],

  ['errors come in OpenAI shape with the right status', async () => {
    const cases = [
      [{ model: 'no-such-model', messages: hello }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: 'hello' }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: hello, temperature: 'hot' }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: hello, max_tokens: 1e12 }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: [{ role: 'wizard', content: 'x' }] }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: hello, n: 2 }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: hello, tool_choice: 'required' }, OpenAI.BadRequestError, 400],
      [{ model: MODEL_ID, messages: [{ role: 'user', content: 'x'.repeat(20000) }] }, OpenAI.BadRequestError, 400],
    ];
    for (const [body, type, status] of cases) {
      await assert.rejects(client.chat.completions.create(body), (e) => {
        assert.ok(e instanceof type, `${JSON.stringify(body).slice(0, 80)}: ${e}`);
        assert.equal(e.status, status);
        assert.equal(typeof e.error.message, 'string');
        assert.ok('type' in e.error && 'param' in e.error && 'code' in e.error);
        return true;
      });
    }
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  }],

  ['/health and /metrics', async () => {
    const h = await fetch(`${server.url}/health`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    const m = await metrics(server.url, KEY);
    for (const name of ['gemma4_requests_total{status="2xx"}', 'gemma4_completion_tokens_total', 'gemma4_queue_depth',
      'gemma4_completion_tokens_per_second', 'gemma4_kv_cache_tokens', 'gemma4_http_connections_open', 'gemma4_requests_running'])
      assert.ok(Number.isFinite(m[name]), name);
    assert.equal(m.gemma4_queue_depth, 0);
  }],
];

const failed = await run(tests);
const { code, signal } = await server.stop();
if (code !== 0) console.log(`FAIL server exit: code ${code} signal ${signal}\n${server.stderr()}`);
process.exit(failed || code !== 0 ? 1 : 0);
