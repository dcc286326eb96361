/* relu(max_pool2d(conv2d(x, w, b), 2)) for float32 on the CPU, forward and backward, in one pass.
 *
 * The assignment's net is conv → 2×2 max-pool → ReLU twice. Run as three PyTorch ops, the first
 * convolution (one input channel) keeps oneDNN's kernels below a quarter of their speed and the
 * max-pool zero-fills and scatters a full-size gradient. Fused, the forward writes only the pooled
 * output and the index (0..3) of each window's maximum, and the backward visits only the windows
 * that ReLU lets a gradient through: one input position per window instead of four.
 *
 * Same function and gradients as the PyTorch ops up to float rounding: the first maximum of a
 * window wins and NaN wins, as in max_pool2d; ReLU's gradient is zero where its output is <= 0
 * (a NaN output passes it on, as PyTorch's does).
 * Shapes: x (N,C,H,W), w (O,C,K,K), b (O) → out, idx (N,O,Hp,Wp) with Hp = (H-K+1)/2 (floor).
 * Valid convolution, stride 1, K <= 8, Wp <= 16. Threads split the batch (OpenMP). The weight
 * and bias gradients are summed over fixed chunks of CHUNK images, each from zero in image order,
 * and the chunks' sums are added to the total in chunk order (an ordered region), so every output
 * and gradient is bit-identical at any thread count. Entry points return 0, or CPR_NOMEM when an allocation failed (nothing is
 * written then). Built and loaded by dlab.torch_engine.fused.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

static inline v8 ld(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat(float f) { return (v8){f, f, f, f, f, f, f, f}; }
static inline v8 sel(v8i m, v8 a, v8 b) { return (v8)((m & (v8i)a) | (~m & (v8i)b)); }
#ifdef __clang__
#define EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define EVEN(a, b) __builtin_shuffle(a, b, (v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define ODD(a, b) __builtin_shuffle(a, b, (v8i){1, 3, 5, 7, 9, 11, 13, 15})
#endif

enum { MAXNV = 4, MAXK = 8, MAXOB = 8 };  /* row vectors, kernel size, output channels per pass */
enum { CHUNK = 8 };  /* images per partial sum of dw, db: fixed, whatever the thread count */
enum { CPR_OK = 0, CPR_NOMEM = 1 };
_Static_assert(sizeof(int) == sizeof(float), "window offsets share the float scratch");

/* the instruction sets this build targets (-march=native): bit 0 AVX2, 1 AVX-512F, 2 FMA */
int cpr_isa(void) {
    int isa = 0;
#ifdef __AVX2__
    isa |= 1;
#endif
#ifdef __AVX512F__
    isa |= 2;
#endif
#ifdef __FMA__
    isa |= 4;
#endif
    return isa;
}

typedef struct { int N, C, H, W, O, K, Hp, Wp, NV, Wpad; } dims;

static dims mkdims(int N, int C, int H, int W, int O, int K) {
    dims d = {N, C, H, W, O, K, (H - K + 1) / 2, (W - K + 1) / 2, 0, 0};
    d.NV = (2 * d.Wp + 7) / 8;    /* 8-float vectors per conv row that the pooling reads */
    d.Wpad = 8 * d.NV + 8 + MAXK;  /* every 8-wide load from a padded row stays inside it */
    return d;
}

/* image xn (C,H,W) into xp (C,H,Wpad), zeros beyond W */
static void pad_image(const float *xn, float *xp, dims d) {
    for (int c = 0; c < d.C; c++)
        for (int h = 0; h < d.H; h++) {
            float *dst = xp + ((size_t)c * d.H + h) * d.Wpad;
            memcpy(dst, xn + ((size_t)c * d.H + h) * d.W, sizeof(float) * d.W);
            memset(dst + d.W, 0, sizeof(float) * (d.Wpad - d.W));
        }
}

/* conv row r of output channels o..o+OB-1 into rows[ob * 8 * MAXNV + ...], for a constant
 * vector count NV and channel block OB: OB * NV accumulators, enough to keep the FMA units busy,
 * stay in the 16 vector registers. wt is the weight as (C*K*K, Opad), zeros past O, from column o */
#define CONV_ROW(NV, OB)                                                                         \
    static void conv_row_##NV##_##OB(const float *xr0, const float *wt, int Opad, const float *b, \
                                     dims d, float *rows) {                                       \
        v8 acc[OB][NV];                                                                          \
        for (int ob = 0; ob < OB; ob++)                                                          \
            for (int k = 0; k < NV; k++) acc[ob][k] = splat(b[ob]);                              \
        for (int c = 0; c < d.C; c++)                                                            \
            for (int u = 0; u < d.K; u++) {                                                      \
                const float *xr = xr0 + ((size_t)c * d.H + u) * d.Wpad;                          \
                for (int v = 0; v < d.K; v++, wt += Opad) {                                      \
                    v8 xv[NV];                                                                   \
                    for (int k = 0; k < NV; k++) xv[k] = ld(xr + v + 8 * k);                     \
                    for (int ob = 0; ob < OB; ob++) {                                            \
                        const v8 ws = splat(wt[ob]);                                             \
                        for (int k = 0; k < NV; k++) acc[ob][k] += ws * xv[k];                   \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        for (int ob = 0; ob < OB; ob++)                                                          \
            for (int k = 0; k < NV; k++) st(rows + ob * 8 * MAXNV + 8 * k, acc[ob][k]);          \
    }
CONV_ROW(1, 8)
CONV_ROW(2, 4)
CONV_ROW(3, 2)
CONV_ROW(4, 2)

/* the pooled, rectified row i of one channel from its two conv rows r0, r1 */
static void pool_row(const float *r0, const float *r1, int Wp, float *orow, uint8_t *irow) {
    float ob[8 * MAXNV / 2];
    int ib[8 * MAXNV / 2];
    for (int q = 0; 8 * q < Wp; q++) {  /* 8 windows at a time */
        const v8 a0 = ld(r0 + 16 * q), b0 = ld(r0 + 16 * q + 8);
        const v8 a1 = ld(r1 + 16 * q), b1 = ld(r1 + 16 * q + 8);
        const v8 w1 = ODD(a0, b0), w2 = EVEN(a1, b1), w3 = ODD(a1, b1);
        v8 best = EVEN(a0, b0);
        v8i bi = {0}, m;
        m = (w1 > best) | (w1 != w1); best = sel(m, w1, best); bi = (m & 1) | (~m & bi);
        m = (w2 > best) | (w2 != w2); best = sel(m, w2, best); bi = (m & 2) | (~m & bi);
        m = (w3 > best) | (w3 != w3); best = sel(m, w3, best); bi = (m & 3) | (~m & bi);
        best = sel(best <= 0.0f, splat(0.0f), best);  /* ReLU; NaN stays NaN */
        st(ob + 8 * q, best);
        memcpy(ib + 8 * q, &bi, sizeof bi);
    }
    memcpy(orow, ob, sizeof(float) * Wp);
    for (int j = 0; j < Wp; j++) irow[j] = (uint8_t)ib[j];
}

static void forward_image(const float *xp, const float *wt, int Opad, const float *bpad, dims d,
                          float *out, uint8_t *idx) {
    float rows[2][MAXOB * 8 * MAXNV] = {{0}};
    const int OB = d.NV == 1 ? 8 : d.NV == 2 ? 4 : 2;
    for (int o = 0; o < d.O; o += OB) {
        const int nb = d.O - o < OB ? d.O - o : OB;
        for (int i = 0; i < d.Hp; i++) {
            for (int a = 0; a < 2; a++) {
                const float *xr0 = xp + (size_t)(2 * i + a) * d.Wpad;
                switch (d.NV) {
                case 1: conv_row_1_8(xr0, wt + o, Opad, bpad + o, d, rows[a]); break;
                case 2: conv_row_2_4(xr0, wt + o, Opad, bpad + o, d, rows[a]); break;
                case 3: conv_row_3_2(xr0, wt + o, Opad, bpad + o, d, rows[a]); break;
                default: conv_row_4_2(xr0, wt + o, Opad, bpad + o, d, rows[a]); break;
                }
            }
            for (int ob = 0; ob < nb; ob++) {
                const size_t at = ((size_t)(o + ob) * d.Hp + i) * d.Wp;
                pool_row(rows[0] + ob * 8 * MAXNV, rows[1] + ob * 8 * MAXNV, d.Wp, out + at,
                         idx + at);
            }
        }
    }
}

int cpr_forward(const float *x, const float *w, const float *b, float *out, uint8_t *idx,
                int N, int C, int H, int W, int O, int K, int nthreads) {
    const dims d = mkdims(N, C, H, W, O, K);
    const size_t plane = (size_t)d.Hp * d.Wp, img = (size_t)C * H * d.Wpad;
    const int Opad = O + MAXOB, taps = C * K * K, T = nthreads > 0 ? nthreads : 1;
    float *wt = calloc((size_t)taps * Opad, sizeof(float)), *bpad = calloc(Opad, sizeof(float));
    float *scratch = malloc(sizeof(float) * img * T);  /* one padded image per thread */
    if (!wt || !bpad || !scratch) {
        free(wt); free(bpad); free(scratch);
        return CPR_NOMEM;
    }
    for (int o = 0; o < O; o++) {
        bpad[o] = b[o];
        for (int t = 0; t < taps; t++) wt[(size_t)t * Opad + o] = w[(size_t)o * taps + t];
    }
    #pragma omp parallel num_threads(T)
    {
        float *xp = scratch + img * omp_get_thread_num();
        #pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            pad_image(x + (size_t)n * C * H * W, xp, d);
            forward_image(xp, wt, Opad, bpad, d, out + (size_t)n * O * plane,
                          idx + (size_t)n * O * plane);
        }
    }
    free(wt); free(bpad); free(scratch);
    return CPR_OK;
}

/* weight-gradient rows of one (o, c) pair from the k active windows (input offsets off[],
 * output gradients gl[]), accumulated in registers */
static inline __attribute__((always_inline)) void grad_w(
        const float *xc, const int *off, const float *gl, int k, int Wpad, float *dwrow,
        const int K) {
    v8 acc[MAXK];
    for (int u = 0; u < K; u++) acc[u] = splat(0.0f);
    for (int e = 0; e < k; e++) {
        const v8 gs = splat(gl[e]);
        const float *base = xc + off[e];
        for (int u = 0; u < K; u++) acc[u] += gs * ld(base + u * Wpad);
    }
    for (int u = 0; u < K; u++) st(dwrow + 8 * u, ld(dwrow + 8 * u) + acc[u]);
}

/* weight and input gradients of output channel o from its k active windows. Window by window,
 * all channels: neighbouring windows overlap, and an 8-wide add into a row that the previous
 * window's add has just stored, shifted by two, would stall on store forwarding */
static inline __attribute__((always_inline)) void grad_wx(
        const float *xp, float *dxp, const int *off, const float *gl, int k, dims d,
        const float *wrows, float *dwrows, const int K) {
    const size_t plane = (size_t)d.H * d.Wpad;
    const v8i lanes = {0, 1, 2, 3, 4, 5, 6, 7}, in_row = lanes < K;  /* an inf gradient times */
    for (int e = 0; e < k; e++) {                                   /* a padding zero is NaN */
        const v8 gs = sel(in_row, splat(gl[e]), splat(0.0f));
        for (int c = 0; c < d.C; c++) {
            const float *xb = xp + c * plane + off[e];
            float *dxb = dxp + c * plane + off[e];
            const float *wr = wrows + (size_t)c * K * 8;
            float *dwr = dwrows + (size_t)c * K * 8;
            for (int u = 0; u < K; u++) {
                st(dwr + 8 * u, ld(dwr + 8 * u) + gs * ld(xb + u * d.Wpad));
                st(dxb + u * d.Wpad, ld(dxb + u * d.Wpad) + gs * ld(wr + 8 * u));
            }
        }
    }
}

/* the windows of image n, output channel o, that ReLU lets a gradient through: their input
 * offsets off[] and gradients gl[]; returns their count and adds their gradients to *gb */
static int active_windows(const float *g, const float *out, const uint8_t *idx, size_t at0,
                          dims d, int *off, float *gl, float *gb) {
    int k = 0;
    float sum = 0.0f;
    for (int i = 0; i < d.Hp; i++)
        for (int j = 0; j < d.Wp; j++) {
            const size_t at = at0 + (size_t)i * d.Wp + j;
            /* ReLU's gradient passes unless out <= 0: NaN passes, as in PyTorch */
            const int p = idx[at], active = !(out[at] <= 0.0f);
            off[k] = (2 * i + (p >> 1)) * d.Wpad + 2 * j + (p & 1);
            gl[k] = g[at];
            sum += active ? g[at] : 0.0f;
            k += active;
        }
    *gb += sum;
    return k;
}

/* image n's gradients: added to dwc (O,C,K,8 padded rows) then dbc (O); dx's image written
 * unless dxp is NULL */
static void backward_image(const float *x, const float *wpad, const float *g, const float *out,
                           const uint8_t *idx, float *dx, int n, dims d, float *xp, float *dxp,
                           int *off, float *gl, float *dwc, float *dbc) {
    const int C = d.C, H = d.H, W = d.W, O = d.O, K = d.K;
    const size_t img = (size_t)C * H * d.Wpad, plane = (size_t)d.Hp * d.Wp;
    pad_image(x + (size_t)n * C * H * W, xp, d);
    if (dxp) memset(dxp, 0, sizeof(float) * img);
    for (int o = 0; o < O; o++) {
        const int k = active_windows(g, out, idx, ((size_t)n * O + o) * plane, d, off, gl,
                                     dbc + o);
        const size_t wo = (size_t)o * C * K * 8;  /* (o, c, u) rows of 8 */
        if (dxp && K == 5)  /* the assignment's kernel size, unrolled */
            grad_wx(xp, dxp, off, gl, k, d, wpad + wo, dwc + wo, 5);
        else if (dxp)
            grad_wx(xp, dxp, off, gl, k, d, wpad + wo, dwc + wo, K);
        else
            for (int c = 0; c < C; c++) {
                const float *xc = xp + (size_t)c * H * d.Wpad;
                float *dwr = dwc + wo + (size_t)c * K * 8;
                if (K == 5)
                    grad_w(xc, off, gl, k, d.Wpad, dwr, 5);
                else
                    grad_w(xc, off, gl, k, d.Wpad, dwr, K);
            }
    }
    if (dxp)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                memcpy(dx + (((size_t)n * C + c) * H + h) * W,
                       dxp + ((size_t)c * H + h) * d.Wpad, sizeof(float) * W);
}

/* dw (O,C,K,K) and db (O) summed over the batch, dx (N,C,H,W) unless NULL; g (N,O,Hp,Wp) is the
 * gradient of out */
int cpr_backward(const float *x, const float *w, const float *g, const float *out,
                 const uint8_t *idx, float *dw, float *db, float *dx,
                 int N, int C, int H, int W, int O, int K, int nthreads) {
    const dims d = mkdims(N, C, H, W, O, K);
    const size_t img = (size_t)C * H * d.Wpad, rows = (size_t)O * C * K, wp = rows * 8;
    const size_t plane = (size_t)d.Hp * d.Wp, stride = wp + O;  /* dw rows padded to 8, db */
    const int T = nthreads > 0 ? nthreads : 1, chunks = (N + CHUNK - 1) / CHUNK;
    float *total = calloc(stride, sizeof(float));  /* the chunks' dw, db, added in chunk order */
    float *wpad = calloc(wp, sizeof(float));  /* w, rows padded to 8 with zeros */
    /* per thread: the padded image and its gradient, the active windows' offsets and
     * gradients, and its chunk's dw, db */
    const size_t per_thread = 2 * img + 2 * plane + stride;
    float *scratch = malloc(sizeof(float) * per_thread * T);
    if (!total || !wpad || !scratch) {
        free(total); free(wpad); free(scratch);
        return CPR_NOMEM;
    }
    for (size_t row = 0; row < rows; row++)
        memcpy(wpad + row * 8, w + row * K, sizeof(float) * K);
    #pragma omp parallel num_threads(T)
    {
        float *xp = scratch + per_thread * omp_get_thread_num(), *dxp = dx ? xp + img : NULL;
        int *off = (int *)(xp + 2 * img);
        float *gl = xp + 2 * img + plane, *dwc = gl + plane, *dbc = dwc + wp;
        #pragma omp for ordered schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            memset(dwc, 0, sizeof(float) * stride);
            const int hi = (ch + 1) * CHUNK < N ? (ch + 1) * CHUNK : N;
            for (int n = ch * CHUNK; n < hi; n++)
                backward_image(x, wpad, g, out, idx, dx, n, d, xp, dxp, off, gl, dwc, dbc);
            #pragma omp ordered
            for (size_t e = 0; e < stride; e++) total[e] += dwc[e];
        }
    }
    for (size_t row = 0; row < rows; row++)
        for (int v = 0; v < K; v++) dw[row * K + v] = total[row * 8 + v];
    memcpy(db, total + wp, sizeof(float) * O);
    free(total); free(wpad); free(scratch);
    return CPR_OK;
}
