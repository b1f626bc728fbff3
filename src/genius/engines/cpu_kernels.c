/* The per-step pieces of CPU decoding that torch runs as many small ops, fp32:
 *
 * decode_attention: every batch row's new query heads against its prompt's keys (kept once per
 *   prompt) and its own generated keys, softmax, weighted values. torch runs this as batched
 *   matmuls of [group x head_dim] by [head_dim x keys], one per (row, KV head); MKL's per-matrix
 *   cost there is several times the arithmetic, and the glue between the matmuls (concatenation,
 *   softmax, scatter to prompt slots) adds as much again. Here each (row, KV head) is one pass
 *   over its keys and values.
 * rope_qk, add_rms_norm, silu_mul: the glue between a layer's matmuls (rotary embedding and KV
 *   cache write, residual add and RMSNorm, SiLU gate). Each is a few torch ops on small tensors,
 *   but right after a large matmul a torch op costs several times what it costs in isolation
 *   (measured: an RMSNorm of 64 x 576 takes ~50 us alone, ~250 us after a 3072 x 576 matmul,
 *   even single-threaded): fewer, smaller calls pay that less often.
 * sample_rows: a token per row from softmax(logits / T) by inverse CDF, and its untempered
 *   log-probability: two exponentials per logit and two short scans, where torch makes ten
 *   passes over the [rows, vocab] logits (softmax, cumsum, logsumexp, ...).
 *
 * Built and loaded by genius/engines/cpu_kernels.py; portable C with GCC/Clang vector extensions
 * (no intrinsics).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef float vf __attribute__((vector_size(32), aligned(4)));  /* 8 floats, any alignment */

static inline float hsum(vf a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

typedef int32_t vi __attribute__((vector_size(32), aligned(4)));
#define BCAST(x) ((vf){x, x, x, x, x, x, x, x})

/* exp of 8 floats; exactly 0 below -80 and for -inf or NaN (a masked key or token), exp(88)
 * above 88. Cephes' expf polynomial (relative error ~1e-7) on vector types, so no libm call and
 * no branch; the clamps keep every intermediate a normal float (denormals cost ~100x on x86). */
static inline vf exp8(vf v) {
    vi keep = v >= BCAST(-80.0f);
    v = (vf)(((vi)v & keep) | ((vi)BCAST(-80.0f) & ~keep));
    vi high = v > BCAST(88.0f);
    v = (vf)(((vi)v & ~high) | ((vi)BCAST(88.0f) & high));
    vf t = v * BCAST(1.44269504088896341f) + BCAST(12582912.0f);  /* 1.5 * 2^23 + round(v / ln 2) */
    vf k = t - BCAST(12582912.0f);
    vf r = v - k * BCAST(0.693359375f) + k * BCAST(2.12194440e-4f);  /* v - k ln 2 */
    vf p = BCAST(1.9875691500E-4f);
    p = p * r + BCAST(1.3981999507E-3f);
    p = p * r + BCAST(8.3334519073E-3f);
    p = p * r + BCAST(4.1665795894E-2f);
    p = p * r + BCAST(1.6666665459E-1f);
    p = p * r + BCAST(5.0000001201E-1f);
    p = p * r * r + r + BCAST(1.0f);
    vi two_k = ((vi)t - (vi)BCAST(12582912.0f) + 127) << 23;  /* 2^k from the rounded bits */
    return (vf)((vi)(p * (vf)two_k) & keep);
}

/* x = exp(x) in place. */
static void exp_inplace(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) *(vf *)(x + i) = exp8(*(vf *)(x + i));
    int rest = (int)(n - i);  /* 0..7 */
    if (rest > 0) {
        vf tail = BCAST(-INFINITY);
        for (int j = 0; j < rest && j < 8; j++) tail[j] = x[i + j];
        tail = exp8(tail);
        for (int j = 0; j < rest && j < 8; j++) x[i + j] = tail[j];
    }
}

/* s[g * stride + t] = scale * (q_g . K_t) for t < count; two keys per pass over the queries. */
static inline __attribute__((always_inline)) void scores(const float *q, const float *K, int64_t count,
                                                           int64_t group, const int nv, float scale,
                                                           float *s, int64_t stride) {
    int64_t t = 0;
    for (; t + 1 < count; t += 2) {
        const vf *k0 = (const vf *)(K + t * nv * 8), *k1 = k0 + nv;
        for (int64_t g = 0; g < group; g++) {
            const vf *qg = (const vf *)(q + g * nv * 8);
            vf a0 = qg[0] * k0[0], a1 = qg[0] * k1[0];
            for (int j = 1; j < nv; j++) {
                a0 += qg[j] * k0[j];
                a1 += qg[j] * k1[j];
            }
            s[g * stride + t] = hsum(a0) * scale;
            s[g * stride + t + 1] = hsum(a1) * scale;
        }
    }
    for (; t < count; t++) {
        const vf *k0 = (const vf *)(K + t * nv * 8);
        for (int64_t g = 0; g < group; g++) {
            const vf *qg = (const vf *)(q + g * nv * 8);
            vf a0 = qg[0] * k0[0];
            for (int j = 1; j < nv; j++) a0 += qg[j] * k0[j];
            s[g * stride + t] = hsum(a0) * scale;
        }
    }
}

/* o += sum_t w[t] V_t (zero weights, i.e. masked keys, skipped). */
static inline __attribute__((always_inline)) void add_weighted(vf *o, const float *w, const float *V, int64_t count,
                                                                 const int nv) {
    for (int64_t t = 0; t < count; t++) {
        float wt = w[t];
        if (wt == 0.0f) continue;
        const vf *v = (const vf *)(V + t * nv * 8);
        for (int j = 0; j < nv; j++) o[j] += wt * v[j];
    }
}

/* One (row, KV head): ``group`` query heads against ``width`` prompt keys (``bias``: 0 or -inf
 * per key) then ``length`` own keys. ``s``: scratch of group * (width + length) floats. */
static inline __attribute__((always_inline)) void attend(const float *q, const float *K, const float *V,
                                                           const float *bias, const float *CK, const float *CV,
                                                           float *out, float *s, int64_t group, const int nv,
                                                           int64_t width, int64_t length, float scale) {
    int64_t total = width + length;
    scores(q, K, width, group, nv, scale, s, total);
    scores(q, CK, length, group, nv, scale, s + width, total);
    for (int64_t g = 0; g < group; g++) {
        float *sg = s + g * total;
        for (int64_t t = 0; t < width; t++) sg[t] += bias[t];
        float m = sg[width];  /* an own key: never masked */
        for (int64_t t = 0; t < total; t++) m = sg[t] > m ? sg[t] : m;
#pragma omp simd
        for (int64_t t = 0; t < total; t++) sg[t] -= m;
        exp_inplace(sg, total);
        float sum = 0.0f;
#pragma omp simd reduction(+:sum)
        for (int64_t t = 0; t < total; t++) sum += sg[t];
        vf o[32] = {0};
        add_weighted(o, sg, V, width, nv);
        add_weighted(o, sg + width, CV, length, nv);
        float inv = 1.0f / sum;
        vf *og = (vf *)(out + g * nv * 8);
        for (int j = 0; j < nv; j++) og[j] = o[j] * inv;
    }
}

/* q: row r's query heads at q + r * q_row_stride, [kv * group, dim] contiguous.
 * pk, pv: [prompts, kv, width, dim]; pbias: [prompts, width]; ck, cv: [rows, kv, cap, dim], of
 * which the first ``length`` keys are filled; row_prompt: [rows] prompt of each row;
 * out: [rows, kv * group, dim]. ``threads``: OpenMP threads (torch's count: the library may not
 * share torch's OpenMP runtime). Returns 1 (nothing done) for a head_dim it does not handle or
 * length < 1, 2 when out of memory. */
int decode_attention(const float *q, int64_t q_row_stride, const float *pk, const float *pv, const float *pbias,
                     const float *ck, const float *cv, const int64_t *row_prompt, float *out, int64_t rows,
                     int64_t kv, int64_t group, int64_t dim, int64_t width, int64_t cap, int64_t length,
                     float scale, int threads) {
    if (dim % 8 != 0 || dim > 256 || length < 1) return 1;
    const int nv = (int)(dim / 8);
    int64_t total = width + length;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *s = (float *)malloc(sizeof(float) * group * total);
        if (!s) {
#pragma omp atomic write
            failed = 2;
        }
#pragma omp for schedule(static)
        for (int64_t task = 0; task < rows * kv; task++) {
            if (!s) continue;
            int64_t r = task / kv, h = task % kv, p = row_prompt[r];
            const float *qh = q + r * q_row_stride + h * group * dim;
            const float *K = pk + (p * kv + h) * width * dim, *V = pv + (p * kv + h) * width * dim;
            const float *CK = ck + task * cap * dim, *CV = cv + task * cap * dim;
            float *o = out + task * group * dim;
            /* Constant vector counts for the common head sizes let the compiler unroll. */
            if (nv == 8)
                attend(qh, K, V, pbias + p * width, CK, CV, o, s, group, 8, width, length, scale);
            else if (nv == 16)
                attend(qh, K, V, pbias + p * width, CK, CV, o, s, group, 16, width, length, scale);
            else
                attend(qh, K, V, pbias + p * width, CK, CV, o, s, group, nv, width, length, scale);
        }
        free(s);
    }
    return failed;
}

#define SAMPLE_BLOCK 512

/* Row r: the first token t whose cumulative weight exceeds u[r] times the total weight, with
 * weights exp((logit - max) / T) (i.e. softmax(logits / T) unnormalised), summed in double;
 * logprobs[r] = log softmax(logits)[t] (before temperature). ``logits`` rows at row_stride.
 * Returns 2 when out of memory, 3 when a row has no finite weight (NaN logits). */
int sample_rows(const float *logits, int64_t row_stride, int64_t rows, int64_t vocab, float inv_temperature,
                const double *u, int64_t *tokens, double *logprobs, int threads) {
    int64_t blocks = (vocab + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *w = (float *)malloc(sizeof(float) * (vocab + SAMPLE_BLOCK));
        float *e = (float *)malloc(sizeof(float) * SAMPLE_BLOCK);
        double *block_sum = (double *)malloc(sizeof(double) * blocks);
        if (!w || !e || !block_sum) {
#pragma omp atomic write
            failed = 2;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!w || !e || !block_sum) continue;
            const float *l = logits + r * row_stride;
            float m = l[0];
#pragma omp simd reduction(max:m)
            for (int64_t t = 0; t < vocab; t++) m = l[t] > m ? l[t] : m;
            double total = 0.0, untempered = 0.0;
            for (int64_t b = 0; b < blocks; b++) {
                int64_t lo = b * SAMPLE_BLOCK, n = vocab - lo < SAMPLE_BLOCK ? vocab - lo : SAMPLE_BLOCK;
                float *wb = w + lo;
#pragma omp simd
                for (int64_t i = 0; i < n; i++) { e[i] = l[lo + i] - m; wb[i] = e[i] * inv_temperature; }
                exp_inplace(wb, n);
                exp_inplace(e, n);
                float sw = 0.0f, se = 0.0f;
#pragma omp simd reduction(+:sw, se)
                for (int64_t i = 0; i < n; i++) { sw += wb[i]; se += e[i]; }
                block_sum[b] = sw;
                total += sw;
                untempered += se;
            }
            double target = u[r] * total, cum = 0.0;
            int64_t b = 0;
            while (b < blocks - 1 && cum + block_sum[b] <= target) cum += block_sum[b++];
            while (b > 0 && block_sum[b] == 0.0) cum -= block_sum[--b];  /* rounding past the last weighted block */
            int64_t lo = b * SAMPLE_BLOCK, hi = lo + SAMPLE_BLOCK < vocab ? lo + SAMPLE_BLOCK : vocab;
            int64_t token = -1;
            for (int64_t t = lo; t < hi; t++) {
                if (w[t] == 0.0f) continue;
                token = t;  /* the last weighted token, should rounding leave cum <= target */
                cum += w[t];
                if (cum > target) break;
            }
            if (token < 0) {  /* no finite weight at all: NaN or -inf logits */
#pragma omp atomic write
                failed = 3;
                token = 0;
            }
            tokens[r] = token;
            logprobs[r] = (double)(l[token] - m) - log(untempered);
        }
        free(w);
        free(e);
        free(block_sum);
    }
    return failed;
}

/* x[r, f] of a [rows, features] matrix at (row stride, feature stride). */
#define AT(x, rs, fs, r, f) ((x)[(r) * (rs) + (f) * (fs)])

/* qkv [rows, (heads + 2 * kv) * dim] (strides rs, fs), out of the fused q/k/v projection:
 * q rotated into q_out [rows, heads, dim]; k rotated and v copied into the caches [rows, kv, cap,
 * dim] at position ``pos``. cos, signed_sin: [rows, dim], signed_sin = (-sin1, sin2), so that
 * x * cos + rotate_half(x) * sin = x * cos + (x2, x1) * signed_sin. */
static inline float *rope_dest(float *q_out, float *ck, float *cv, int64_t r, int64_t j, int64_t heads, int64_t kv,
                               int64_t dim, int64_t cap, int64_t pos) {
    if (j < heads) return q_out + (r * heads + j) * dim;
    if (j < heads + kv) return ck + ((r * kv + (j - heads)) * cap + pos) * dim;
    return cv + ((r * kv + (j - heads - kv)) * cap + pos) * dim;
}

void rope_qk(const float *qkv, int64_t rs, int64_t fs, const float *cos, const float *signed_sin, int64_t rows,
             int64_t heads, int64_t kv, int64_t dim, float *q_out, float *ck, float *cv, int64_t cap, int64_t pos,
             int threads) {
    int64_t half = dim / 2, tiled = rs == 1 ? rows / 8 * 8 : 0;
    /* A transposed qkv (rows contiguous, as lean.linear returns it) is read 8 rows at a time, so
     * that every load is contiguous; the remaining rows (and a row-major qkv) one at a time. */
#pragma omp parallel for num_threads(threads) if (rows * (heads + 2 * kv) * dim >= 262144)
    for (int64_t r0 = 0; r0 < tiled; r0 += 8) {
        vf c[256], sn[256];  /* cos and signed sin of the 8 rows, per dimension (dim <= 256) */
        for (int64_t d = 0; d < dim; d++)
            for (int k = 0; k < 8; k++) {
                c[d][k] = cos[(r0 + k) * dim + d];
                sn[d][k] = signed_sin[(r0 + k) * dim + d];
            }
        for (int64_t j = 0; j < heads + 2 * kv; j++) {
            float *o[8];
            for (int k = 0; k < 8; k++) o[k] = rope_dest(q_out, ck, cv, r0 + k, j, heads, kv, dim, cap, pos);
            const float *x = qkv + j * dim * fs + r0;
            if (j >= heads + kv) {
                for (int64_t d = 0; d < dim; d++) {
                    vf v = *(const vf *)(x + d * fs);
                    for (int k = 0; k < 8; k++) o[k][d] = v[k];
                }
                continue;
            }
            for (int64_t d = 0; d < half; d++) {
                vf x1 = *(const vf *)(x + d * fs), x2 = *(const vf *)(x + (half + d) * fs);
                vf o1 = x1 * c[d] + x2 * sn[d], o2 = x2 * c[half + d] + x1 * sn[half + d];
                for (int k = 0; k < 8; k++) {
                    o[k][d] = o1[k];
                    o[k][half + d] = o2[k];
                }
            }
        }
    }
    for (int64_t r = tiled; r < rows; r++) {
        const float *c = cos + r * dim, *sn = signed_sin + r * dim;
        for (int64_t j = 0; j < heads + 2 * kv; j++) {
            float *o = rope_dest(q_out, ck, cv, r, j, heads, kv, dim, cap, pos);
            int64_t f0 = j * dim;
            if (j >= heads + kv) {
                for (int64_t d = 0; d < dim; d++) o[d] = AT(qkv, rs, fs, r, f0 + d);
                continue;
            }
            for (int64_t d = 0; d < half; d++) {
                float x1 = AT(qkv, rs, fs, r, f0 + d), x2 = AT(qkv, rs, fs, r, f0 + half + d);
                o[d] = x1 * c[d] + x2 * sn[d];
                o[half + d] = x2 * c[half + d] + x1 * sn[half + d];
            }
        }
    }
}

/* hidden [rows, dim] (contiguous) += delta (strides rs, fs; NULL: nothing added); then
 * out [rows, dim] = hidden * rsqrt(mean(hidden^2) + eps) * weight, the Llama RMSNorm. */
void add_rms_norm(float *hidden, const float *delta, int64_t rs, int64_t fs, const float *weight, float *out,
                  int64_t rows, int64_t dim, float eps, int threads) {
    if (delta && rs == 1)  /* transposed delta: read it in memory order */
        for (int64_t d = 0; d < dim; d++)
            for (int64_t r = 0; r < rows; r++) hidden[r * dim + d] += delta[d * fs + r];
#pragma omp parallel for num_threads(threads) if (rows * dim >= 262144)
    for (int64_t r = 0; r < rows; r++) {
        float *x = hidden + r * dim;
        if (delta && rs != 1)
            for (int64_t d = 0; d < dim; d++) x[d] += AT(delta, rs, fs, r, d);
        float ss = 0.0f;
#pragma omp simd reduction(+:ss)
        for (int64_t d = 0; d < dim; d++) ss += x[d] * x[d];
        float inv = 1.0f / sqrtf(ss / (float)dim + eps);
        float *o = out + r * dim;
#pragma omp simd
        for (int64_t d = 0; d < dim; d++) o[d] = (x[d] * inv) * weight[d];
    }
}

/* out = silu(gate) * up over gate_up [rows, 2 * inter] (strides rs, fs: gate then up), written
 * with gate_up's layout: out (r, i) at r * ors + i * ofs. */
void silu_mul(const float *gate_up, int64_t rs, int64_t fs, int64_t rows, int64_t inter, float *out,
              int64_t ors, int64_t ofs, int threads) {
    /* Walk the contiguous dimension innermost, 8 at a time. */
    int64_t outer = rs == 1 ? inter : rows, inner = rs == 1 ? rows : inter;
    int64_t in_outer = rs == 1 ? fs : rs, out_outer = rs == 1 ? ofs : ors, up = inter * fs;
#pragma omp parallel for num_threads(threads) if (rows * inter >= 262144)
    for (int64_t a = 0; a < outer; a++) {
        const float *g = gate_up + a * in_outer, *u = g + up;
        float *o = out + a * out_outer;
        int64_t b = 0;
        for (; b + 8 <= inner; b += 8) {
            vf x = *(const vf *)(g + b);
            *(vf *)(o + b) = x / (BCAST(1.0f) + exp8(-x)) * *(const vf *)(u + b);
        }
        for (; b < inner; b++) {
            vf x = BCAST(g[b]);
            o[b] = (x / (BCAST(1.0f) + exp8(-x)))[0] * u[b];
        }
    }
}
