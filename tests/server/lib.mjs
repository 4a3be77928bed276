// Shared helpers of the server tests: start `gemma4 serve` on a free port,
// a tiny test runner, raw HTTP for what the SDK cannot send.
import { spawn } from 'node:child_process';
import net from 'node:net';

export const BIN = process.env.GEMMA4 || 'build/gemma4';
export const MODEL = process.env.SERVE_MODEL || 'build/serve-tiny.gguf';
export const MODEL_ID = MODEL.replace(/^.*\//, '').replace(/\.gguf$/, '');

// Starts the server (port 0: the OS picks), resolves once /health says ok.
export async function startServer(args = [], { env = {} } = {}) {
  const proc = spawn(BIN, ['serve', '-m', MODEL, '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      stderr += d;
      const m = /listening on http:\/\/[^ ]*:(\d+)\/v1/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`gemma4 serve exited (${code}): ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const r = await fetch(`${url}/health`).catch(() => null);
    if (r && r.status === 200) break;
    if (i > 300) throw new Error(`server not ready: ${stderr}`);
    await sleep(100);
  }
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url, port, proc,
    stderr: () => stderr,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Prometheus text -> { name or name{labels}: value }
export async function metrics(url, apiKey) {
  const r = await fetch(`${url}/metrics`, { headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {} });
  const text = await r.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Sends raw bytes (a whole HTTP request, or a part of one) and collects
// what comes back until the server closes or timeoutMs passes.
// pieces: Buffers/strings sent with delayMs between them; endAfter: half-close after sending.
export function rawRequest(port, pieces, { delayMs = 0, timeoutMs = 10000, endAfter = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text, how });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.on('data', (d) => {
      chunks.push(d);
      // a complete non-chunked reply: stop reading (keep-alive would wait)
      const text = Buffer.concat(chunks).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const len = /content-length: *(\d+)/i.exec(text.slice(0, head));
      if (head >= 0 && len && text.length >= head + 4 + Number(len[1])) finish('reply');
    });
    sock.on('close', () => finish('closed'));
    sock.on('error', () => finish('error'));
    sock.on('connect', async () => {
      for (const p of pieces) {
        if (done) return;
        sock.write(p);
        if (delayMs) await sleep(delayMs);
      }
      if (endAfter) sock.end();
    });
  });
}

// A minimal runner: named async tests in order, a summary, the exit code.
export async function run(tests) {
  let failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      const note = await fn();
      console.log(`ok   ${name} (${Date.now() - t0} ms)${note ? ' — ' + note : ''}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
  }
  console.log(failed ? `${failed} of ${tests.length} failed` : `all ${tests.length} passed`);
  return failed;
}
