/* Elementwise functions of the Gemma 4 graph. */
#ifndef G4_OPS_ACTIVATION_H
#define G4_OPS_ACTIVATION_H

/* gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
float g4_gelu_tanh(float x);

/* out[i] = gelu(gate[i]) * up[i] */
void g4_gelu_gate(float *out, const float *gate, const float *up, int n);

/* x = cap · tanh(x / cap) */
void g4_softcap(float *x, int n, float cap);

/* x[i] = exp(x[i] - shift); returns the sum. */
double g4_exp_shifted(float *x, int n, float shift);

/* In-place softmax over n values (float32, max-subtracted). */
void g4_softmax(float *x, int n);

void g4_scale(float *x, int n, float s);
void g4_add(float *acc, const float *x, int n);

#endif
