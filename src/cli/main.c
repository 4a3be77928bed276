/* gemma4: the command-line front end. Each command lives in its own file and
 * uses only the public API (include/gemma4.h). */
#include "cli/common.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "answer one prompt in the chat format, streamed"},
    {"chat", cmd_chat, "an interactive chat"},
    {"tokenize", cmd_tokenize, "text to token ids"},
    {"detokenize", cmd_detokenize, "token ids to text"},
    {"info", cmd_info, "architecture, parameter counts and memory needs of a model"},
    {"logits", cmd_logits, "write the logits of every position of a prompt to a file"},
    {"generate", cmd_generate, "continue a prompt of token ids and print the new ids"},
    {"bench", cmd_bench, "prompt and decode speed (tokens/s) and peak memory"},
    {"convert", cmd_convert, "write a checkpoint directory as a GGUF file"},
    {"quantize", cmd_quantize, "re-write a GGUF file with another tensor type"},
    {"eval-quant", cmd_eval_quant, "top-1 agreement and KL divergence of quantised types"},
    {"synth", cmd_synth, "write a random-weight model in the released shapes (GGUF)"},
    {"serve", cmd_serve, "an OpenAI-compatible HTTP server with continuous batching"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: gemma4 COMMAND [options]   (gemma4 COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "gemma4: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
