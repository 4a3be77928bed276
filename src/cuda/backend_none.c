/* The CUDA seam in a build without CUDA: no devices, and every entry point
 * that needs one says how to get it. */
#include "cuda/backend.h"

static int no_cuda(g4_error *err) { return g4_fail(err, "this gemma4 was built without CUDA (build it with `make cuda`)"); }

int g4_gpu_device_count(void) { return 0; }
int g4_gpu_model_new(const g4_model *m, g4_gpu_model **out, g4_error *err) { (void)m; *out = NULL; return no_cuda(err); }
void g4_gpu_model_free(g4_gpu_model *g) { (void)g; }
int g4_gpu_synth_weights(const g4_config *cfg, const char *ftype, g4_weights *w, g4_error *err) {
    (void)cfg; (void)ftype; (void)w;
    return no_cuda(err);
}
int g4_gpu_context_new(g4_gpu_model *gm, int n_seq, int n_ctx, int n_batch, g4_gpu_context **out, g4_error *err) {
    (void)gm; (void)n_seq; (void)n_ctx; (void)n_batch;
    *out = NULL;
    return no_cuda(err);
}
void g4_gpu_context_free(g4_gpu_context *c) { (void)c; }
int g4_gpu_forward(g4_gpu_context *c, const g4_batch *b, g4_error *err) { (void)c; (void)b; return no_cuda(err); }
float *g4_gpu_logits(g4_gpu_context *c, int *n_logits) { (void)c; *n_logits = 0; return NULL; }
void g4_gpu_logits_keep_row(g4_gpu_context *c, int row) { (void)c; (void)row; }
int g4_gpu_seq_length(const g4_gpu_context *c, int seq) { (void)c; (void)seq; return -1; }
int g4_gpu_seq_clear(g4_gpu_context *c, int seq) { (void)c; (void)seq; return -1; }
int g4_gpu_seq_copy(g4_gpu_context *c, int src, int dst, g4_error *err) { (void)c; (void)src; (void)dst; return no_cuda(err); }
int g4_gpu_seq_truncate(g4_gpu_context *c, int seq, int n_keep, g4_error *err) {
    (void)c; (void)seq; (void)n_keep;
    return no_cuda(err);
}
int g4_gpu_copy_bandwidth(double *gb_per_s, g4_error *err) { *gb_per_s = 0; return no_cuda(err); }
uint64_t g4_gpu_decode_bytes(const g4_gpu_model *g) { (void)g; return 0; }
uint64_t g4_gpu_weight_bytes(const g4_gpu_model *g) { (void)g; return 0; }
uint64_t g4_gpu_matmul_params(const g4_gpu_model *g, uint64_t *prompt_row) {
    (void)g;
    *prompt_row = 0;
    return 0;
}
int g4_gpu_gemm_tflops(g4_gpu_model *g, double *tflops, g4_error *err) { (void)g; *tflops = 0; return no_cuda(err); }
long g4_gpu_fused_route_count(void) { return 0; }
long g4_gpu_attention_rope_count(void) { return 0; }
long g4_gpu_rows_kernel_count(void) { return 0; }
