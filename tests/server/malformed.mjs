// Malformed and hostile requests, each with the answers that count as a
// clean rejection: an HTTP status, or 'closed' (the server dropped the
// connection without answering, e.g. a body that never arrives).
// {name, pieces: what is written (Buffers/strings), delayMs between pieces,
//  endAfter: half-close after writing, timeoutMs, expect: [status | 'closed']}
export function malformedCases({ model, key, port }) {
  const auth = key ? `Authorization: Bearer ${key}\r\n` : '';
  const req = (method, path, body, extraHeaders = '') => {
    const b = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    return Buffer.concat([Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${auth}${extraHeaders}` +
      `Content-Type: application/json\r\nContent-Length: ${b.length}\r\nConnection: close\r\n\r\n`), b]);
  };
  const chat = (obj) => req('POST', '/v1/chat/completions', JSON.stringify(obj));
  const good = { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
  const with_ = (extra) => chat({ ...good, ...extra });
  const bad400 = [400];
  const c = [];
  const add = (name, pieces, expect = bad400, opts = {}) => c.push({ name, pieces: Array.isArray(pieces) ? pieces : [pieces], expect, ...opts });

  // JSON that does not parse
  add('empty body', req('POST', '/v1/chat/completions', ''));
  add('lone brace', req('POST', '/v1/chat/completions', '{'));
  add('truncated JSON', req('POST', '/v1/chat/completions', '{"model":"' + model + '","messages":[{"role":"us'));
  add('trailing garbage', req('POST', '/v1/chat/completions', JSON.stringify(good) + ' xyz'));
  add('single quotes', req('POST', '/v1/chat/completions', "{'model':'x'}"));
  add('invalid UTF-8 byte', req('POST', '/v1/chat/completions', Buffer.concat([Buffer.from('{"model":"' + model + '","messages":[{"role":"user","content":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')])));
  add('overlong UTF-8', req('POST', '/v1/chat/completions', Buffer.concat([Buffer.from('{"model":"' + model + '","messages":[{"role":"user","content":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')])));
  add('lone surrogate escape', req('POST', '/v1/chat/completions', '{"model":"' + model + '","messages":[{"role":"user","content":"\\ud800"}]}'));
  add('NUL escape', req('POST', '/v1/chat/completions', '{"model":"' + model + '","messages":[{"role":"user","content":"a\\u0000b"}]}'));
  add('nesting 100000 deep', req('POST', '/v1/chat/completions', '['.repeat(100000) + ']'.repeat(100000)));
  add('number overflow 1e999', req('POST', '/v1/chat/completions', '{"model":"' + model + '","temperature":1e999}'));
  add('integer overflow', req('POST', '/v1/chat/completions', '{"model":"' + model + '","max_tokens":99999999999999999999999}'));
  // well-formed JSON of the wrong shape
  add('array body', req('POST', '/v1/chat/completions', '[]'));
  add('null body', req('POST', '/v1/chat/completions', 'null'));
  add('string body', req('POST', '/v1/chat/completions', '"hello"'));
  add('model missing', chat({ messages: good.messages }));
  add('model a number', with_({ model: 5 }));
  add('model unknown', with_({ model: '../../etc/passwd' }));
  add('messages missing', chat({ model }));
  add('messages an object', with_({ messages: {} }));
  add('messages empty', with_({ messages: [] }));
  add('message a number', with_({ messages: [1] }));
  add('message without role', with_({ messages: [{ content: 'x' }] }));
  add('unknown role', with_({ messages: [{ role: 'root', content: 'x' }] }));
  add('content a number', with_({ messages: [{ role: 'user', content: 42 }] }));
  add('image part (file path)', with_({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] }));
  add('text part without text', with_({ messages: [{ role: 'user', content: [{ type: 'text' }] }] }));
  add('5000 messages', with_({ messages: Array.from({ length: 5000 }, () => ({ role: 'user', content: 'x' })) }));
  add('prompt longer than the context', with_({ messages: [{ role: 'user', content: 'word '.repeat(30000) }] }));
  add('tool call arguments not JSON', with_({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{nope' } }] }] }));
  add('max_tokens negative', with_({ max_tokens: -1 }));
  add('max_tokens fractional', with_({ max_tokens: 1.5 }));
  add('max_tokens a string', with_({ max_tokens: '10' }));
  add('max_tokens huge', with_({ max_tokens: 1e15 }));
  add('temperature negative', with_({ temperature: -1 }));
  add('temperature 1e308', with_({ temperature: 1e308 }));
  add('temperature a string', with_({ temperature: 'hot' }));
  add('top_p above 1', with_({ top_p: 2 }));
  add('top_k negative', with_({ top_k: -5 }));
  add('top_k fractional', with_({ top_k: 2.5 }));
  add('min_p a boolean', with_({ min_p: true }));
  add('seed a string', with_({ seed: 'abc' }));
  add('n = 3', with_({ n: 3 }));
  add('stream a string', with_({ stream: 'yes' }));
  add('stream_options a number', with_({ stream: true, stream_options: 5 }));
  add('stop a number', with_({ stop: 5 }));
  add('stop numbers', with_({ stop: [1, 2] }));
  add('stop empty', with_({ stop: '' }));
  add('20 stop strings', with_({ stop: Array.from({ length: 20 }, (_, i) => `s${i}`) }));
  add('tools a string', with_({ tools: 'x' }));
  add('tool without function', with_({ tools: [{ type: 'function' }] }));
  add('tool name with spaces', with_({ tools: [{ type: 'function', function: { name: 'rm -rf /' } }] }));
  add('500 tools', with_({ tools: Array.from({ length: 500 }, (_, i) => ({ type: 'function', function: { name: `f${i}` } })) }));
  add('tool_choice unknown word', with_({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'always' }));
  add('tool_choice names no tool', with_({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }));
  add('tool_choice without tools', with_({ tool_choice: 'required' }));
  add('response_format xml', with_({ response_format: { type: 'xml' } }));
  add('json_schema without schema', with_({ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }));
  add('reasoning_effort unknown', with_({ reasoning_effort: 'extreme' }));
  add('chat_template_kwargs an array', with_({ chat_template_kwargs: [] }));
  add('logit_bias', with_({ logit_bias: { 1: 5 } }));
  add('presence_penalty', with_({ presence_penalty: 1 }));
  add('completion prompt a number', req('POST', '/v1/completions', JSON.stringify({ model, prompt: 5 })));
  add('completion token id negative', req('POST', '/v1/completions', JSON.stringify({ model, prompt: [-1] })));
  add('completion token id too large', req('POST', '/v1/completions', JSON.stringify({ model, prompt: [999999999] })));
  add('completion echo', req('POST', '/v1/completions', JSON.stringify({ model, prompt: 'x', echo: true })));
  // HTTP level
  add('GET on a POST endpoint', req('GET', '/v1/chat/completions'), [405]);
  add('POST on a GET endpoint', req('POST', '/v1/models', '{}'), [405]);
  add('unknown path', req('POST', '/v1/engines', '{}'), [404]);
  add('path traversal', req('GET', '/../../etc/passwd'), [404, 400]);
  add('unknown method', req('BREW', '/v1/chat/completions', '{}'), [405, 400, 501]);
  add('declared body of 100 MB', Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 104857600\r\n\r\n{"model":`), [413]);
  add('chunked body over the limit', [Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`),
    ...Array.from({ length: 20 }, () => Buffer.from(`100000\r\n${'a'.repeat(0x100000)}\r\n`)), Buffer.from('0\r\n\r\n')], [413, 'closed']);
  add('body shorter than Content-Length, then EOF', Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 100\r\n\r\n{"model"`), ['closed', 400], { endAfter: true });
  add('Content-Length not a number', Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: abc\r\n\r\n{}`), [400, 'closed']);
  add('garbage request line', Buffer.from('HELLO THERE\r\n\r\n'), [400, 505, 'closed']);
  add('header without a colon', Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n`), [400, 'closed', 200]);
  add('100 KB header', Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100000)}\r\n\r\n`), [400, 413, 431, 'closed']);
  add('binary noise', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)), [400, 505, 'closed']);
  add('wrong API key', Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n`), key ? [401] : [200]);
  add('empty bearer token', Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n`), key ? [401] : [200]);
  add('HTTP/1.0 request', Buffer.from(`GET /health HTTP/1.0\r\n\r\n`), [200]);
  // slow clients: a request trickled in byte by byte is answered; one that stalls is dropped
  const slow = with_({ max_tokens: 1 });
  add('slow client (byte by byte)', [...slow].map((b) => Buffer.from([b])), [200], { delayMs: 3, timeoutMs: 30000 });
  add('stalled client (half the headers, then nothing)', Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n`), ['closed', 408], { timeoutMs: 30000 });
  return c;
}
