// Independent check of constrained generations: every answer must parse as
// JSON and validate against its schema with ajv (JSON Schema 2020-12, with
// ajv-formats), or, for tool calls, every call must name a declared tool and
// its arguments validate against that tool's parameters.
//
//   node validate.mjs --schema s.json answers.jsonl
//   node validate.mjs --tools tools.json --choice required|auto|NAME answers.jsonl
//
// answers.jsonl: `gemma4 run --json-out` lines. Prints a one-line summary
// (and the first failures); exits 1 if any answer is invalid.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const file = args[args.length - 1];
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim());
let bad = 0, shown = 0, maskMs = 0, masks = 0, decodeMs = 0, tokens = 0;
const fail = (i, why) => { bad++; if (shown++ < 5) console.log(`  answer ${i}: ${why}`); };

let check;
if (opt("--schema")) {
  const validate = ajv.compile(JSON.parse(readFileSync(opt("--schema"), "utf8")));
  check = (a, i) => {
    if (a.tool_calls && a.tool_calls.length) return fail(i, "unexpected tool call");
    let v;
    try { v = JSON.parse(a.content); } catch (e) { return fail(i, `not JSON: ${JSON.stringify(a.content).slice(0, 200)}`); }
    if (!validate(v)) fail(i, `${ajv.errorsText(validate.errors)}: ${a.content.slice(0, 200)}`);
  };
} else {
  const tools = JSON.parse(readFileSync(opt("--tools"), "utf8"));
  const choice = opt("--choice") || "auto";
  const byName = new Map(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters || { type: "object" })]));
  check = (a, i) => {
    const calls = a.tool_calls || [];
    if (choice !== "auto" && calls.length === 0) return fail(i, `no tool call: ${JSON.stringify(a.content).slice(0, 200)}`);
    if (choice !== "auto" && a.content !== "") return fail(i, `text beside the calls: ${JSON.stringify(a.content).slice(0, 200)}`);
    if (choice !== "auto" && choice !== "required" && calls.some((c) => c.name !== choice)) return fail(i, "another tool");
    if (a.content.includes("<|tool_call>") || /^\s*call:/.test(a.content)) return fail(i, `unparsed call in content: ${JSON.stringify(a.content).slice(0, 200)}`);
    for (const c of calls) {
      const validate = byName.get(c.name);
      if (!validate) return fail(i, `undeclared tool ${c.name}`);
      if (!validate(c.arguments)) return fail(i, `${c.name}: ${ajv.errorsText(validate.errors)}: ${JSON.stringify(c.arguments)}`);
    }
  };
}

lines.forEach((l, i) => {
  const a = JSON.parse(l);
  check(a, i);
  if (a.grammar) { maskMs += a.grammar.mask_ms; masks += a.grammar.masks; decodeMs += a.grammar.decode_ms; }
  tokens += a.usage.completion_tokens;
});
const perMask = masks ? maskMs / masks : 0, perTok = masks ? decodeMs / masks : 0;
console.log(`${bad ? "FAIL" : "ok"} ${lines.length - bad}/${lines.length} valid; ${tokens} tokens; ` +
            `mask ${perMask.toFixed(3)} ms/token of ${perTok.toFixed(2)} ms/token decode`);
process.exit(bad || lines.length === 0 ? 1 : 0);
