/* Options every model-running command shares (-m, -t, --ctx, --batch, ...) and
 * the model/context set-up with its memory report. */
#ifndef G4_CLI_COMMON_H
#define G4_CLI_COMMON_H

#include "gemma4.h"

typedef struct model_opts {
    const char *model_path;
    gemma4_context_params ctx;
} model_opts;

#define MODEL_OPTS_HELP \
    "  -m, --model PATH     GGUF file or checkpoint directory (config.json + *.safetensors)\n" \
    "  -t, --threads N      worker threads (default: all CPUs)\n" \
    "      --ctx N          context length in tokens (default: min(model maximum, 8192))\n" \
    "      --batch N        tokens per forward pass (default 256; 1 = token by token)\n" \
    "      --gpu | --cpu    run on the CUDA GPU / on the CPU (default: the GPU when built with CUDA and present)\n" \
    "      --kv-cache T     f32 (default, the reference's precision) or f16 (half the memory; CPU only)\n"

void model_opts_init(model_opts *o);
/* If argv[*i] is one of the shared options, consumes it (and its value) and
 * returns 1; returns 0 if it is not; -1 on a bad value. */
int model_opts_parse(model_opts *o, int argc, char **argv, int *i);
/* Loads the model and a context, printing errors; 0 on success. */
int model_open(const model_opts *o, gemma4_model **model, gemma4_context **ctx);

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_eval_quant(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
