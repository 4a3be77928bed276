/* The Gemma tokenizer: a merge-rank BPE over Unicode code points with byte
 * fallback, following the Hugging Face `tokenizers` semantics of the
 * checkpoint's tokenizer.json (normalizer, pre_tokenizer, model, decoder and
 * added_tokens sections). ../shared/docs/tokenizer-and-chat.md §1 describes
 * the algorithm; this header is the engine-internal API.
 *
 * Encoding, in HF's order:
 *   1. added tokens (added_tokens[]) are found in the raw text, leftmost
 *      first, longest at a given start; each becomes its id;
 *   2. every other stretch is normalized (Gemma: ' ' -> U+2581 "▁"; nothing
 *      else, no prefix space) and pre-tokenized (Gemma: a Split on " " that
 *      finds nothing after the normalizer);
 *   3. each piece goes through BPE: code points are the initial symbols, the
 *      adjacent pair with the lowest merge rank is merged first (leftmost on a
 *      tie); a code point missing from the vocabulary becomes one <0xXX>
 *      token per UTF-8 byte.
 * No BOS is added: the caller (chat template) writes <bos> itself.
 *
 * A g4_tokenizer is immutable after loading; encode and decode may run on
 * several threads at once. A g4_tok_decoder belongs to one thread. */
#ifndef G4_TOK_TOKENIZER_H
#define G4_TOK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct g4_tokenizer g4_tokenizer;
typedef struct g4_tok_decoder g4_tok_decoder;

/* Loads a Hugging Face tokenizer.json (model type BPE). A file this code
 * cannot reproduce exactly (regex patterns, Unicode normalizers, dropout...)
 * is refused with a message naming the unsupported part. */
int g4_tok_load(const char *tokenizer_json_path, g4_tokenizer **out, g4_error *err);

/* The same from a tokenizer.json already in memory (need not be
 * NUL-terminated). */
int g4_tok_load_json(const char *json, size_t len, g4_tokenizer **out, g4_error *err);

/* Token types as GGUF's tokenizer.ggml.token_type stores them. */
enum {
    G4_TOK_TYPE_NORMAL = 1,
    G4_TOK_TYPE_UNKNOWN = 2,
    G4_TOK_TYPE_CONTROL = 3,      /* matched in text only with parse_special */
    G4_TOK_TYPE_USER_DEFINED = 4, /* always matched in text */
    G4_TOK_TYPE_UNUSED = 5,
    G4_TOK_TYPE_BYTE = 6,
};

/* A vocabulary given as plain arrays, the shape of GGUF's tokenizer.ggml.*
 * keys. Token i has id i. */
typedef struct g4_tok_arrays {
    size_t n_tokens;
    const char *const *tokens; /* token texts (UTF-8) */
    const size_t *token_lens;  /* byte lengths; NULL: the texts are NUL-terminated */
    const int32_t *token_types; /* G4_TOK_TYPE_*; NULL: all normal */
    /* Merges as "left right" strings, rank = index (tokenizer.ggml.merges).
     * If n_merges is 0, merges are derived from the scores instead (Gemma 3
     * GGUFs carry only scores): every split of a normal token into two
     * vocabulary tokens becomes a merge, ranked by the merged token's score,
     * highest first, equal scores going leftmost: SentencePiece BPE as
     * llama.cpp runs it, which HF's merge ranks only approximate. */
    size_t n_merges;
    const char *const *merges;
    const size_t *merge_lens; /* NULL: NUL-terminated */
    const float *scores;      /* tokenizer.ggml.scores; needed only without merges */
    int escape_whitespace;    /* ' ' <-> U+2581 (Gemma: 1) */
    int byte_fallback;        /* <0xXX> tokens for code points not in the vocabulary */
    int32_t unk_id;           /* -1: the token of type UNKNOWN, if any */
} g4_tok_arrays;

int g4_tok_from_arrays(const g4_tok_arrays *a, g4_tokenizer **out, g4_error *err);

void g4_tok_free(g4_tokenizer *tok);

/* 1 + the highest id (Gemma 3's tokenizer.json: 262,145, because
 * <image_soft_token> 262144 sits past the 262,144-entry vocabulary). */
int32_t g4_tok_n_vocab(const g4_tokenizer *tok);

/* The id of a token text (added tokens first, then the vocabulary), or -1. */
int32_t g4_tok_token_id(const g4_tokenizer *tok, const char *text);

/* The text of a token as stored (U+2581 not replaced), or NULL for an id
 * with no token. */
const char *g4_tok_token_text(const g4_tokenizer *tok, int32_t id, size_t *len);

/* 1 if id is an added token with "special": true (skipped by
 * skip_special decoding, matched in text only with parse_special). */
int g4_tok_is_special(const g4_tokenizer *tok, int32_t id);

/* 1 if id is an added token (special or not): matched whole, never the
 * result of BPE on ordinary text. */
int g4_tok_is_added(const g4_tokenizer *tok, int32_t id);

/* Encodes len bytes of UTF-8 text into *ids (malloc'ed, *n entries; free()
 * it). parse_special = 1 is HF's default: every added token is matched in the
 * text. parse_special = 0 is HF's encode_special_tokens / llama.cpp's
 * parse_special=false: added tokens marked special are encoded as plain text
 * (a special match is skipped whole, as HF does), non-special added tokens
 * are still matched. Gemma 4 marks all 24 of its added tokens special, so
 * with 0 user text can never produce a control token; the chat template
 * emits those ids itself. Invalid UTF-8 is an error naming the byte offset
 * (HF cannot take it either: its input is a Rust &str). Embedded NUL bytes
 * are ordinary text. Texts of 4 KiB and more use a per-call cache of short
 * pieces (same result, faster). */
int g4_tok_encode(const g4_tokenizer *tok, const char *text, size_t len, int parse_special, int32_t **ids,
                  size_t *n, g4_error *err);

/* Decodes ids as HF's decode(ids, skip_special_tokens): each token's text
 * through the decoder (Gemma: U+2581 -> ' ', runs of <0xXX> tokens joined
 * into bytes, an invalid run giving one U+FFFD per byte). *text is
 * malloc'ed and NUL-terminated. An id with no token is an error (HF drops it
 * silently). */
int g4_tok_decode(const g4_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **text,
                  size_t *len, g4_error *err);

/* Streaming decode: push ids one at a time; each push returns the text that
 * became final (possibly empty), always whole UTF-8 characters. A run of
 * <0xXX> tokens is held back until a token of another kind (or finish) ends
 * it, since HF validates the run as a whole. Concatenating every push and
 * the finish gives exactly g4_tok_decode of the same ids. */
int g4_tok_decoder_new(const g4_tokenizer *tok, int skip_special, g4_tok_decoder **out, g4_error *err);
/* *text stays valid until the next call on this decoder. */
int g4_tok_decoder_push(g4_tok_decoder *d, int32_t id, const char **text, size_t *len, g4_error *err);
/* Flushes a held-back byte run and resets the decoder for a new sequence. */
int g4_tok_decoder_finish(g4_tok_decoder *d, const char **text, size_t *len, g4_error *err);
void g4_tok_decoder_free(g4_tok_decoder *d);

#endif
