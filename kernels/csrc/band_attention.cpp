// Band attention (a sliding window, or causal) plus global keys on the CPU, computing only the scores each query block needs.
//
// Built by kernels/impl/cpp.py with the host's compiler (-O3 -march=native) and called through ctypes, so
// it needs no PyTorch headers. One call computes, for every query i of every (batch, head):
//
//     out[i] = softmax_j(scale * q[i] . k[j]) v[j]   over j with -left <= j - i <= right, or j a global token,
//     lse[i] = log sum_j exp(scale * q[i] . k[j])    (natural log, float32)
//
// (left = right = window for a sliding window; left >= S, right = 0 for causal attention.)
//
// Queries go in blocks of ROWS_PER_BLOCK. A block's keys are the contiguous span its rows' bands cover,
// at most ROWS_PER_BLOCK + left + right keys (a Longformer window of 256 each side: 544 keys for 513
// needed per row, where a 256-query block in a fused dense call computes 768), plus the global keys
// outside that span. Keys and values are packed once per (batch, head):
//   - bfloat16 with AVX512-BF16: K as [D/2][S'][2] pairs and V as [S'/2][D][2] pairs, so that q . k and
//     p . v are vdpbf16ps products (float32 accumulation); the probabilities are rounded to bfloat16 for
//     p . v, as PyTorch's fused CPU kernel does.
//   - otherwise (float32, or a CPU without AVX512-BF16): float32 K transposed [D][S'] and V [S'][D], in
//     AVX-512 FMAs, or without AVX-512 in AVX2 FMAs (K then as panels of 16 keys, [S'/16][D][16]; head dims
//     16, 32, 48, 64, 128), or in loops the compiler vectorizes for the host.
// The softmax is float32 with a polynomial exp (relative error < 2e-7 on the range used).
// Work is split over (batch, head, query block) on the given number of threads.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__FMA__)
#define SECTIONRAG_AVX2 1
#include <immintrin.h>
#endif
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__linux__)
#define SECTIONRAG_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

constexpr int ROWS_PER_BLOCK = 32;
constexpr int COL_ALIGN = 32;  // the span's width is rounded up to this; packed arrays are padded for it

inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_bf16(float f) {  // round to nearest even (inputs here are finite)
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// exp(x) for x <= 0 (x = -inf gives 0): 2^(x log2 e) as 2^n * 2^f, f in [-0.5, 0.5], degree-6 polynomial.
inline float fast_exp(float x) {
  const bool underflow = x < -87.0f;
  x = underflow ? -87.0f : x;
  float t = x * 1.4426950408889634f;
  float n = std::floor(t + 0.5f);
  float f = t - n;
  float p = 1.5403530393381606e-4f;
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return underflow ? 0.0f : p * scale;
}

constexpr float LOG2E = 1.4426950408889634f;

struct Args {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;
  int64_t B, H, S, D;
  int64_t qs[3], ks[3], vs[3], os[3];  // element strides of batch, head and position (the last dim is contiguous)
  int64_t left, right;  // how far before and after its own position each query's band reaches
  const int64_t* globals;  // sorted, distinct, in [0, S)
  int64_t n_globals;
  float scale;
  bool bf16_in;   // q, k, v are bfloat16 (else float32)
  bool bf16_out;  // out is bfloat16 (else float32)
};

// The span of keys query block [i0, i1) needs: [lo, hi), lo even, hi - lo rounded up to COL_ALIGN.
inline void block_span(const Args& a, int64_t i0, int64_t i1, int64_t* lo, int64_t* ncols) {
  int64_t l = std::max<int64_t>(0, i0 - a.left) & ~int64_t(1);
  int64_t h = std::min<int64_t>(a.S, i1 + a.right);
  *lo = l;
  *ncols = (h - l + COL_ALIGN - 1) / COL_ALIGN * COL_ALIGN;
}

// Global keys outside [lo, lo + ncols): every row of the block attends them (they are outside its band).
inline void extra_globals(const Args& a, int64_t lo, int64_t hi, std::vector<int64_t>& out) {
  out.clear();
  for (int64_t g = 0; g < a.n_globals; ++g)
    if (a.globals[g] < lo || a.globals[g] >= hi) out.push_back(a.globals[g]);
}

inline float load_in(const Args& a, const void* base, int64_t index) {
  return a.bf16_in ? bf16_to_float(static_cast<const uint16_t*>(base)[index]) : static_cast<const float*>(base)[index];
}

// Row i's scores s[0, ncols) for keys lo + c: -inf outside its band unless the key is global, or past S.
inline void mask_row(const Args& a, const uint8_t* is_global, int64_t i, int64_t lo, int64_t ncols, float* s) {
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t band_lo = std::max<int64_t>(lo, i - a.left), band_hi = std::min<int64_t>(a.S, i + a.right + 1);
  for (int64_t j = lo; j < band_lo; ++j)
    if (!is_global[j]) s[j - lo] = ninf;
  for (int64_t j = band_hi; j < lo + ncols; ++j)
    if (j >= a.S || !is_global[j]) s[j - lo] = ninf;
}

// mask_row for a path with the packed region of global keys (its columns ncols + e, e < ng, hold global key
// e's copy): -inf too for the region's padding and for global keys inside the span (their own column counts).
inline void mask_row_and_region(const Args& a, const uint8_t* is_global, int64_t i, int64_t lo, int64_t ncols,
                                int64_t ng, float* s) {
  mask_row(a, is_global, i, lo, ncols, s);
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t e = 0; e < ng; ++e)
    if (e >= a.n_globals || (a.globals[e] >= lo && a.globals[e] < lo + ncols)) s[ncols + e] = ninf;
}

#if defined(__AVX512F__)
// 2^t for t <= 0 in 16 lanes, 0 below -126 (so t = -inf gives 0, and nothing goes denormal, which
// would cost microcode assists): 2^n * 2^f, n = round(t), f in [-0.5, 0.5], with a polynomial of degree 6
// (float32 results) or 4 (relative error < 5e-5, for probabilities rounded to bfloat16 after).
template <int DEGREE>
inline __m512 exp2_nonpositive(__m512 t) {
  const __m512 lo = _mm512_set1_ps(-126.0f);
  const __mmask16 keep = _mm512_cmp_ps_mask(t, lo, _CMP_GE_OQ);
  t = _mm512_max_ps(t, lo);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p;
  if constexpr (DEGREE == 6) {
    p = _mm512_fmadd_ps(_mm512_set1_ps(1.5403530393381606e-4f), f, _mm512_set1_ps(1.3333558146428443e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
  } else {
    static_assert(DEGREE == 4, "degree 4 or 6");
    p = _mm512_set1_ps(9.6181291076284772e-3f);
  }
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

// The max of s[0, n) (n a multiple of 16), on two chains: one max's latency would otherwise bound the loop.
inline float max512(const float* s, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vm0 = ninf, vm1 = ninf;
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    vm0 = _mm512_max_ps(vm0, _mm512_loadu_ps(s + j));
    vm1 = _mm512_max_ps(vm1, _mm512_loadu_ps(s + j + 16));
  }
  if (j < n) vm0 = _mm512_max_ps(vm0, _mm512_loadu_ps(s + j));
  return _mm512_reduce_max_ps(_mm512_max_ps(vm0, vm1));
}
#endif

#if defined(SECTIONRAG_AVX2)
// 2^t for t <= 0 in 8 lanes, 0 below -126 (t = -inf gives 0): as exp2_nonpositive<6> with AVX2 + FMA.
inline __m256 exp2_nonpositive_avx2(__m256 t) {
  const __m256 lo = _mm256_set1_ps(-126.0f);
  const __m256 keep = _mm256_cmp_ps(t, lo, _CMP_GE_OQ);
  t = _mm256_max_ps(t, lo);
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(t, n);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.5403530393381606e-4f), f, _mm256_set1_ps(1.3333558146428443e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284772e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821580e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

inline float hsum256(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_shuffle_ps(x, x, 1)));
}
#endif

// Softmax of one row in place: s[0, n) becomes exp(s - max); returns (max, sum). The first n16 entries
// (a multiple of 16) go 16 lanes at a time (AVX-512 intrinsics, or lane arrays the compiler vectorizes
// without reassociating a sum it was not told it may reorder); the rest one by one.
inline void softmax_row(float* s, int64_t n16, int64_t n, float* m_out, float* l_out) {
  const float ninf = -std::numeric_limits<float>::infinity();
  float m = ninf, l = 0.0f;
#if defined(__AVX512F__)
  m = max512(s, n16);
  for (int64_t j = n16; j < n; ++j) m = std::max(m, s[j]);
  const __m512 vmax = _mm512_set1_ps(m * LOG2E), log2e = _mm512_set1_ps(LOG2E);
  __m512 vl = _mm512_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) {
    const __m512 p = exp2_nonpositive<6>(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), log2e, vmax));
    _mm512_storeu_ps(s + j, p);
    vl = _mm512_add_ps(vl, p);
  }
  l = _mm512_reduce_add_ps(vl);
#elif defined(SECTIONRAG_AVX2)
  const __m256 ninf8 = _mm256_set1_ps(ninf);
  __m256 vm0 = ninf8, vm1 = ninf8;
  for (int64_t j = 0; j < n16; j += 16) {
    vm0 = _mm256_max_ps(vm0, _mm256_loadu_ps(s + j));
    vm1 = _mm256_max_ps(vm1, _mm256_loadu_ps(s + j + 8));
  }
  m = hmax256(_mm256_max_ps(vm0, vm1));
  for (int64_t j = n16; j < n; ++j) m = std::max(m, s[j]);
  const __m256 vmax = _mm256_set1_ps(m * LOG2E), log2e = _mm256_set1_ps(LOG2E);
  __m256 vl0 = _mm256_setzero_ps(), vl1 = _mm256_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) {
    const __m256 p0 = exp2_nonpositive_avx2(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), log2e, vmax));
    const __m256 p1 = exp2_nonpositive_avx2(_mm256_fmsub_ps(_mm256_loadu_ps(s + j + 8), log2e, vmax));
    _mm256_storeu_ps(s + j, p0);
    _mm256_storeu_ps(s + j + 8, p1);
    vl0 = _mm256_add_ps(vl0, p0);
    vl1 = _mm256_add_ps(vl1, p1);
  }
  l = hsum256(_mm256_add_ps(vl0, vl1));
#else
  constexpr int L = 16;
  float mx[L], acc[L];
  for (int c = 0; c < L; ++c) mx[c] = ninf, acc[c] = 0.0f;
  for (int64_t j = 0; j < n16; j += L)
    for (int c = 0; c < L; ++c) mx[c] = mx[c] > s[j + c] ? mx[c] : s[j + c];
  for (int c = 0; c < L; ++c) m = std::max(m, mx[c]);
  for (int64_t j = n16; j < n; ++j) m = std::max(m, s[j]);
  for (int64_t j = 0; j < n16; j += L)
    for (int c = 0; c < L; ++c) {
      const float p = fast_exp(s[j + c] - m);
      s[j + c] = p;
      acc[c] += p;
    }
  for (int c = 0; c < L; ++c) l += acc[c];
#endif
  for (int64_t j = n16; j < n; ++j) {
    const float p = fast_exp(s[j] - m);
    s[j] = p;
    l += p;
  }
  *m_out = m;
  *l_out = l;
}

template <typename T>
inline void store_out(const Args& a, int64_t b, int64_t h, int64_t i, const float* o, float inv_l) {
  T* dst = static_cast<T*>(a.out) + b * a.os[0] + h * a.os[1] + i * a.os[2];
  int64_t d0 = 0;
#if defined(__AVX512BF16__)
  if constexpr (sizeof(T) == 2) {
    const __m512 scale = _mm512_set1_ps(inv_l);
    for (; d0 + 16 <= a.D; d0 += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + d0),
                          (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(o + d0), scale)));
  }
#endif
  for (int64_t d = d0; d < a.D; ++d) {
    float x = o[d] * inv_l;
    if constexpr (sizeof(T) == 2) dst[d] = float_to_bf16(x);
    else dst[d] = x;
  }
}

inline void finish_row(const Args& a, int64_t b, int64_t h, int64_t i, const float* o, float m, float l) {
  float inv_l = 1.0f / l;
  if (a.bf16_out) store_out<uint16_t>(a, b, h, i, o, inv_l);
  else store_out<float>(a, b, h, i, o, inv_l);
  a.lse[(b * a.H + h) * a.S + i] = m + std::log(l);
}

// ---------------------------------------------------------------------------------------------------
// float32 path: K transposed [D][SP], V [SP][D], float32 products the compiler vectorizes.

// Grow-only storage left uninitialized (every element read is written first), kept between calls on the
// same calling thread unless it grew past KEEP_BYTES.
template <typename T>
struct Buffer {
  std::unique_ptr<T[]> ptr;
  size_t cap = 0;
  void resize(size_t n) {
    if (n > cap) ptr.reset(new T[n]), cap = n;
  }
  T* data() { return ptr.get(); }
  const T* data() const { return ptr.get(); }
  size_t bytes() const { return cap * sizeof(T); }
  void trim(size_t keep) {
    if (bytes() > keep) ptr.reset(), cap = 0;
  }
};
constexpr size_t KEEP_BYTES = size_t(64) << 20;

struct PackedF32 {
  int64_t SP;
  int64_t GB = 0;
  bool panels = false;  // K as panels of 16 keys, [SP / 16][D][16] (the AVX2 path), else [D][SP]
  Buffer<float> kt, vv;  // per (b, h): D * SP each
  int64_t k_at(int64_t D, int64_t d, int64_t j) const {
    return panels ? ((j >> 4) * D + d) * 16 + (j & 15) : d * SP + j;
  }
  void resize(size_t n) { kt.resize(n); vv.resize(n); }
  void trim() { kt.trim(KEEP_BYTES); vv.trim(KEEP_BYTES); }
};

void pack_f32(const Args& a, int64_t bh, PackedF32& p) {
  const int64_t b = bh / a.H, h = bh % a.H, S = a.S, D = a.D, SP = p.SP;
  float* kt = p.kt.data() + bh * D * SP;
  float* vv = p.vv.data() + bh * D * SP;
  for (int64_t j = 0; j < S; ++j) {
    for (int64_t d = 0; d < D; ++d) {
      kt[p.k_at(D, d, j)] = load_in(a, a.k, b * a.ks[0] + h * a.ks[1] + j * a.ks[2] + d);
      vv[j * D + d] = load_in(a, a.v, b * a.vs[0] + h * a.vs[1] + j * a.vs[2] + d);
    }
  }
  for (int64_t d = 0; d < D; ++d)
    for (int64_t j = S; j < SP; ++j) kt[p.k_at(D, d, j)] = 0.0f;
  for (int64_t j = S * D; j < SP * D; ++j) vv[j] = 0.0f;
  for (int64_t g = 0; g < a.n_globals; ++g) {  // the global keys' copies (the AVX-512 path's region)
    const int64_t j = a.globals[g], col = p.GB + g;
    for (int64_t d = 0; d < D; ++d) {
      kt[p.k_at(D, d, col)] = kt[p.k_at(D, d, j)];
      vv[col * D + d] = vv[j * D + d];
    }
  }
}

#if defined(__AVX512F__)
// float32 with AVX-512 (D a multiple of 16): 8 query rows x 32 keys of FMAs per step, the probabilities
// times values 8 (or fewer, for wide heads) rows at a time; global keys outside the span are the packed
// region's columns, as in the tile path.
template <int NV>
inline void pv_f32_avx512(const float* pr, int64_t ps, const float* vv, int64_t D, int64_t cols_from, int64_t n,
                          float* o, int rows) {
  constexpr int ROWS = NV <= 2 ? 8 : (NV <= 4 ? 4 : 2);
  for (int r0 = 0; r0 < rows; r0 += ROWS) {
    __m512 acc[ROWS][NV];
    for (int r = 0; r < ROWS; ++r)
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; ++c) {
      const float* vr = vv + (cols_from + c) * D;
      __m512 vx[NV];
      for (int x = 0; x < NV; ++x) vx[x] = _mm512_loadu_ps(vr + 16 * x);
      for (int r = 0; r < ROWS; ++r) {
        const __m512 pb = _mm512_set1_ps(pr[(r0 + r) * ps + c]);
        for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_fmadd_ps(pb, vx[x], acc[r][x]);
      }
    }
    for (int r = 0; r < ROWS; ++r)
      for (int x = 0; x < NV; ++x) _mm512_storeu_ps(o + (r0 + r) * D + 16 * x, acc[r][x]);
  }
}

template <int NV>
void block_f32_avx512(const Args& a, const PackedF32& p, const uint8_t* is_global, int64_t bh, int64_t i0, int64_t i1,
                      std::vector<float>& scratch, std::vector<int64_t>& extras) {
  constexpr int R = 8;
  const int64_t b = bh / a.H, h = bh % a.H, D = 16 * NV, SP = p.SP;
  const float* kt = p.kt.data() + bh * D * SP;
  const float* vv = p.vv.data() + bh * D * SP;
  int64_t lo, ncols;
  block_span(a, i0, i1, &lo, &ncols);
  extra_globals(a, lo, lo + ncols, extras);
  const int64_t ng = extras.empty() ? 0 : (a.n_globals + 31) / 32 * 32, ss = ncols + ng;
  scratch.resize(R * ss + R * D + R * D);
  float* s = scratch.data();
  float* q = s + R * ss;
  float* o = q + R * D;
  for (int64_t r0 = i0; r0 < i1; r0 += R) {
    const int nr = static_cast<int>(std::min<int64_t>(R, i1 - r0));
    for (int r = 0; r < R; ++r)
      for (int64_t d = 0; d < D; ++d)
        q[r * D + d] = r < nr ? load_in(a, a.q, b * a.qs[0] + h * a.qs[1] + (r0 + r) * a.qs[2] + d) * a.scale : 0.0f;
    for (int64_t c0 = 0; c0 < ss; c0 += 32) {  // scaled scores
      const int64_t col = c0 < ncols ? lo + c0 : p.GB + (c0 - ncols);
      __m512 acc[R][2];
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
      for (int64_t d = 0; d < D; ++d) {
        const __m512 k0 = _mm512_loadu_ps(kt + d * SP + col), k1 = _mm512_loadu_ps(kt + d * SP + col + 16);
        for (int r = 0; r < R; ++r) {
          const __m512 qb = _mm512_set1_ps(q[r * D + d]);
          acc[r][0] = _mm512_fmadd_ps(qb, k0, acc[r][0]);
          acc[r][1] = _mm512_fmadd_ps(qb, k1, acc[r][1]);
        }
      }
      for (int r = 0; r < R; ++r) {
        _mm512_storeu_ps(s + r * ss + c0, acc[r][0]);
        _mm512_storeu_ps(s + r * ss + c0 + 16, acc[r][1]);
      }
    }
    float m[R], l[R];
    for (int r = 0; r < nr; ++r) {
      float* sr = s + r * ss;
      mask_row_and_region(a, is_global, r0 + r, lo, ncols, ng, sr);
      softmax_row(sr, ss, ss, &m[r], &l[r]);
    }
    for (int r = nr; r < R; ++r) std::fill(s + r * ss, s + r * ss + ss, 0.0f);
    pv_f32_avx512<NV>(s, ss, vv, D, lo, ncols, o, R);
    if (ng) {  // the region's columns: add their products to the span's
      float* og = q;  // the queries are no longer needed
      pv_f32_avx512<NV>(s + ncols, ss, vv, D, p.GB, ng, og, R);
      for (int64_t x = 0; x < R * D; ++x) o[x] += og[x];
    }
    for (int r = 0; r < nr; ++r) finish_row(a, b, h, r0 + r, o + r * D, m[r], l[r]);
  }
}
#endif

constexpr int F32_ROWS = 4;
constexpr int F32_COLS = 16;

// s[r][c] = scale * q[r] . kt[:, lo + c] for r < F32_ROWS, c < ncols (ncols a multiple of F32_COLS).
template <int D>
void qk_f32(const float* q, const float* kt, int64_t SP, int64_t dyn_d, int64_t lo, int64_t ncols, float* s,
            int64_t ss, float scale) {
  const int64_t DD = D ? D : dyn_d;
  for (int64_t c0 = 0; c0 < ncols; c0 += F32_COLS) {
    float acc[F32_ROWS][F32_COLS] = {};
    for (int64_t d = 0; d < DD; ++d) {
      const float* kr = kt + d * SP + lo + c0;
      for (int r = 0; r < F32_ROWS; ++r) {
        const float qv = q[r * DD + d];
        for (int c = 0; c < F32_COLS; ++c) acc[r][c] += qv * kr[c];
      }
    }
    for (int r = 0; r < F32_ROWS; ++r)
      for (int c = 0; c < F32_COLS; ++c) s[r * ss + c0 + c] = acc[r][c] * scale;
  }
}

// o[r][:] = sum_c p[r][c] v[lo + c][:].
template <int D>
void pv_f32(const float* p, int64_t ps, const float* vv, int64_t dyn_d, int64_t lo, int64_t ncols, float* o) {
  const int64_t DD = D ? D : dyn_d;
  if constexpr (D != 0) {
    float acc[F32_ROWS][D] = {};
    for (int64_t c = 0; c < ncols; ++c) {
      const float* vr = vv + (lo + c) * D;
      for (int r = 0; r < F32_ROWS; ++r) {
        const float pr = p[r * ps + c];
        for (int d = 0; d < D; ++d) acc[r][d] += pr * vr[d];
      }
    }
    for (int r = 0; r < F32_ROWS; ++r)
      for (int d = 0; d < D; ++d) o[r * D + d] = acc[r][d];
  } else {
    std::fill(o, o + F32_ROWS * DD, 0.0f);
    for (int64_t c = 0; c < ncols; ++c) {
      const float* vr = vv + (lo + c) * DD;
      for (int r = 0; r < F32_ROWS; ++r) {
        const float pr = p[r * ps + c];
        for (int64_t d = 0; d < DD; ++d) o[r * DD + d] += pr * vr[d];
      }
    }
  }
}

template <int D>
void block_f32(const Args& a, const PackedF32& p, const uint8_t* is_global, int64_t bh, int64_t i0, int64_t i1,
               std::vector<float>& scratch, std::vector<int64_t>& extras) {
  const int64_t b = bh / a.H, h = bh % a.H, DD = a.D, SP = p.SP;
  const float* kt = p.kt.data() + bh * DD * SP;
  const float* vv = p.vv.data() + bh * DD * SP;
  int64_t lo, ncols;
  block_span(a, i0, i1, &lo, &ncols);
  extra_globals(a, lo, lo + ncols, extras);
  const int64_t ne = static_cast<int64_t>(extras.size()), ss = ncols + ne;
  scratch.resize(F32_ROWS * ss + 2 * F32_ROWS * DD);
  float* s = scratch.data();
  float* q = s + F32_ROWS * ss;
  float* o = q + F32_ROWS * DD;
  for (int64_t r0 = i0; r0 < i1; r0 += F32_ROWS) {
    const int nr = static_cast<int>(std::min<int64_t>(F32_ROWS, i1 - r0));
    for (int r = 0; r < F32_ROWS; ++r)
      for (int64_t d = 0; d < DD; ++d)
        q[r * DD + d] = r < nr ? load_in(a, a.q, b * a.qs[0] + h * a.qs[1] + (r0 + r) * a.qs[2] + d) : 0.0f;
    qk_f32<D>(q, kt, SP, DD, lo, ncols, s, ss, a.scale);
    for (int r = 0; r < nr; ++r) {
      float* sr = s + r * ss;
      for (int64_t e = 0; e < ne; ++e) {
        float dot = 0.0f;
        for (int64_t d = 0; d < DD; ++d) dot += q[r * DD + d] * kt[d * SP + extras[e]];
        sr[ncols + e] = dot * a.scale;
      }
      mask_row(a, is_global, r0 + r, lo, ncols, sr);
    }
    float m[F32_ROWS], l[F32_ROWS];
    for (int r = 0; r < nr; ++r) softmax_row(s + r * ss, ncols, ss, &m[r], &l[r]);
    for (int r = nr; r < F32_ROWS; ++r) std::fill(s + r * ss, s + r * ss + ss, 0.0f);
    pv_f32<D>(s, ss, vv, DD, lo, ncols, o);
    for (int r = 0; r < nr; ++r) {
      float* orow = o + r * DD;
      for (int64_t e = 0; e < ne; ++e) {
        const float pe = s[r * ss + ncols + e];
        const float* vr = vv + extras[e] * DD;
        for (int64_t d = 0; d < DD; ++d) orow[d] += pe * vr[d];
      }
      finish_row(a, b, h, r0 + r, orow, m[r], l[r]);
    }
  }
}

#if defined(SECTIONRAG_AVX2)
// float32 with AVX2 + FMA (CPUs without AVX-512; bfloat16 inputs are widened when packed). A block's rows go
// through each step together, so that what a step reads stays in L1 however long the span (a causal
// prompt's span is every earlier key, more than L2 holds): the scores for 16 keys at a time, 4 rows x 16
// keys of FMAs; then, 64 keys at a time, the probabilities times values in chunks of 4 rows x 16 dims (or
// 2 x 32). Global keys outside the span are the packed region's columns, as in the AVX-512 path. D = 8 * NV.

// o[r][:] += sum_c p[r][c] v[cols_from + c][:] for r < rows (a multiple of 4) and c < n.
template <int NV>
inline void pv_f32_avx2(const float* p, int64_t ps, int64_t rows, const float* vv, int64_t cols_from, int64_t n,
                        float* o) {
  constexpr int64_t D = 8 * NV, KEYS = 64;
  constexpr int CH = NV % 4 == 0 ? 4 : (NV % 2 == 0 ? 2 : 1);  // vectors of a chunk of dimensions
  constexpr int ROWS = CH == 4 ? 2 : 4;                        // ROWS * CH accumulators stay in registers
  for (int64_t c0 = 0; c0 < n; c0 += KEYS) {
    const int64_t c1 = std::min<int64_t>(n, c0 + KEYS);
    for (int x0 = 0; x0 < NV; x0 += CH)
      for (int64_t r0 = 0; r0 < rows; r0 += ROWS) {
        __m256 acc[ROWS][CH];
        for (int r = 0; r < ROWS; ++r)
          for (int x = 0; x < CH; ++x) acc[r][x] = _mm256_loadu_ps(o + (r0 + r) * D + 8 * (x0 + x));
        for (int64_t c = c0; c < c1; ++c) {
          const float* vr = vv + (cols_from + c) * D + 8 * x0;
          __m256 vx[CH];
          for (int x = 0; x < CH; ++x) {
            vx[x] = _mm256_loadu_ps(vr + 8 * x);
            asm("" : "+x"(vx[x]));  // as in the scores' loop
          }
          for (int r = 0; r < ROWS; ++r) {
            const __m256 pb = _mm256_broadcast_ss(p + (r0 + r) * ps + c);
            for (int x = 0; x < CH; ++x) acc[r][x] = _mm256_fmadd_ps(pb, vx[x], acc[r][x]);
          }
        }
        for (int r = 0; r < ROWS; ++r)
          for (int x = 0; x < CH; ++x) _mm256_storeu_ps(o + (r0 + r) * D + 8 * (x0 + x), acc[r][x]);
      }
  }
}

template <int NV>
void block_f32_avx2(const Args& a, const PackedF32& p, const uint8_t* is_global, int64_t bh, int64_t i0, int64_t i1,
                    std::vector<float>& scratch, std::vector<int64_t>& extras) {
  constexpr int R = 4;
  constexpr int64_t D = 8 * NV;
  const int64_t b = bh / a.H, h = bh % a.H, SP = p.SP;
  const float* kt = p.kt.data() + bh * D * SP;
  const float* vv = p.vv.data() + bh * D * SP;
  int64_t lo, ncols;
  block_span(a, i0, i1, &lo, &ncols);
  if (lo & 15) {  // the span starts on a panel (the extra keys are masked)
    const int64_t hi = std::min<int64_t>(a.S, i1 + a.right);
    lo &= ~int64_t(15);
    ncols = (hi - lo + COL_ALIGN - 1) / COL_ALIGN * COL_ALIGN;
  }
  extra_globals(a, lo, lo + ncols, extras);
  const int64_t ng = extras.empty() ? 0 : (a.n_globals + 31) / 32 * 32, ss = ncols + ng;
  const int64_t nr = i1 - i0, rows = (nr + R - 1) / R * R;
  scratch.resize(rows * ss + 2 * rows * D);
  float* s = scratch.data();
  float* q = s + rows * ss;
  float* o = q + rows * D;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t d = 0; d < D; ++d)
      q[r * D + d] = r < nr ? load_in(a, a.q, b * a.qs[0] + h * a.qs[1] + (i0 + r) * a.qs[2] + d) * a.scale : 0.0f;
  for (int64_t c0 = 0; c0 < ss; c0 += 16) {  // scaled scores
    const int64_t col = c0 < ncols ? lo + c0 : p.GB + (c0 - ncols);
    const float* panel = kt + p.k_at(D, 0, col);  // col is a multiple of 16
    for (int64_t r0 = 0; r0 < rows; r0 += R) {
      __m256 acc[R][2];
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
      for (int64_t d = 0; d < D; ++d) {
        const float* kd = panel + d * 16;
        __m256 k0 = _mm256_loadu_ps(kd), k1 = _mm256_loadu_ps(kd + 8);
        asm("" : "+x"(k0), "+x"(k1));  // loaded once into registers, not folded into each row's FMA
        for (int r = 0; r < R; ++r) {
          const __m256 qb = _mm256_broadcast_ss(q + (r0 + r) * D + d);
          acc[r][0] = _mm256_fmadd_ps(qb, k0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(qb, k1, acc[r][1]);
        }
      }
      for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(s + (r0 + r) * ss + c0, acc[r][0]);
        _mm256_storeu_ps(s + (r0 + r) * ss + c0 + 8, acc[r][1]);
      }
    }
  }
  float m[ROWS_PER_BLOCK], l[ROWS_PER_BLOCK];
  for (int64_t r = 0; r < nr; ++r) {
    float* sr = s + r * ss;
    mask_row_and_region(a, is_global, i0 + r, lo, ncols, ng, sr);
    softmax_row(sr, ss, ss, &m[r], &l[r]);
  }
  if (rows > nr) std::fill(s + nr * ss, s + rows * ss, 0.0f);
  std::fill(o, o + rows * D, 0.0f);
  pv_f32_avx2<NV>(s, ss, rows, vv, lo, ncols, o);
  if (ng) pv_f32_avx2<NV>(s + ncols, ss, rows, vv, p.GB, ng, o);  // the region's columns
  for (int64_t r = 0; r < nr; ++r) finish_row(a, b, h, i0 + r, o + r * D, m[r], l[r]);
}
#endif

// ---------------------------------------------------------------------------------------------------
// bfloat16 path with AVX512-BF16: K pairs [D/2][SP][2], V pairs [SP/2][D][2], vdpbf16ps products.

#if defined(__AVX512BF16__)
struct PackedBF16 {
  int64_t SP;
  int64_t GB = 0;  // the global keys' copies start at this column (a multiple of 32 past any span)
  Buffer<uint16_t> kp, vp;  // per (b, h): D * SP each
  void resize(size_t n) { kp.resize(n); vp.resize(n); }
  void trim() { kp.trim(KEEP_BYTES); vp.trim(KEEP_BYTES); }
};

// Rows [j0, j1) of every head of batch b: each key and value row is read once, all heads together (in the
// encoder q, k and v are strided views of one [B, S, 3, H, D] projection).
void pack_bf16_rows(const Args& a, int64_t b, int64_t j0, int64_t j1, PackedBF16& p) {
  const int64_t D = a.D, SP = p.SP;
  const uint16_t* k = static_cast<const uint16_t*>(a.k);
  const uint16_t* v = static_cast<const uint16_t*>(a.v);
  // K: row j's dimension pairs are 32-bit words, word d2 going to column j of row d2.
  auto put_k = [&](int64_t h, int64_t j) {
    uint32_t* kp = reinterpret_cast<uint32_t*>(p.kp.data() + (b * a.H + h) * D * SP);
    const uint16_t* kr = k + b * a.ks[0] + h * a.ks[1] + j * a.ks[2];
    for (int64_t d2 = 0; d2 < D / 2; ++d2) {
      uint32_t word;
      std::memcpy(&word, kr + 2 * d2, 4);
      kp[d2 * SP + j] = word;
    }
  };
  // V: rows j and j + 1 (j even) interleaved element by element; j1 - j0 is even except at the end.
  auto put_v = [&](int64_t h, int64_t j) {
    uint16_t* vo = p.vp.data() + (b * a.H + h) * D * SP + (j >> 1) * D * 2;
    const uint16_t* v0 = v + b * a.vs[0] + h * a.vs[1] + j * a.vs[2];
    if (j + 1 < a.S) {
      const uint16_t* v1 = v0 + a.vs[2];
      int64_t d = 0;
      const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38,
                                              6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
      const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
      for (; d + 32 <= D; d += 32) {
        const __m512i r0 = _mm512_loadu_si512(v0 + d), r1 = _mm512_loadu_si512(v1 + d);
        _mm512_storeu_si512(vo + 2 * d, _mm512_permutex2var_epi16(r0, lo_idx, r1));
        _mm512_storeu_si512(vo + 2 * d + 32, _mm512_permutex2var_epi16(r0, hi_idx, r1));
      }
      for (; d < D; ++d) vo[2 * d] = v0[d], vo[2 * d + 1] = v1[d];
    } else {
      for (int64_t d = 0; d < D; ++d) vo[2 * d] = v0[d];
    }
  };
  if (a.ks[1] < a.ks[2]) {  // heads side by side in a row: read rows in order
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t h = 0; h < a.H; ++h) {
        put_k(h, j);
        if (!(j & 1)) put_v(h, j);
      }
  } else {  // one head after another
    for (int64_t h = 0; h < a.H; ++h)
      for (int64_t j = j0; j < j1; ++j) {
        put_k(h, j);
        if (!(j & 1)) put_v(h, j);
      }
  }
}

// What the row packing leaves: zeros past the keys, and the global keys' copies (the tile path's region).
void pack_bf16_tail(const Args& a, int64_t bh, PackedBF16& p) {
  const int64_t b = bh / a.H, h = bh % a.H, S = a.S, D = a.D, SP = p.SP;
  uint16_t* kp = p.kp.data() + bh * D * SP;
  uint16_t* vp = p.vp.data() + bh * D * SP;
  for (int64_t d2 = 0; d2 < D / 2; ++d2)
    std::memset(kp + (d2 * SP + S) * 2, 0, sizeof(uint16_t) * 2 * (SP - S));
  if (S & 1)  // the last pair's second key
    for (int64_t d = 0; d < D; ++d) vp[((S >> 1) * D + d) * 2 + 1] = 0;
  std::memset(vp + ((S + 1) >> 1) * D * 2, 0, sizeof(uint16_t) * (SP - ((S + 1) & ~int64_t(1))) * D);
  const uint16_t* k = static_cast<const uint16_t*>(a.k);
  const uint16_t* v = static_cast<const uint16_t*>(a.v);
  for (int64_t g = 0; g < a.n_globals; ++g) {
    const int64_t j = a.globals[g], col = p.GB + g;
    const uint16_t* kr = k + b * a.ks[0] + h * a.ks[1] + j * a.ks[2];
    const uint16_t* vr = v + b * a.vs[0] + h * a.vs[1] + j * a.vs[2];
    for (int64_t d = 0; d < D; ++d) {
      kp[((d >> 1) * SP + col) * 2 + (d & 1)] = kr[d];
      vp[((col >> 1) * D + d) * 2 + (col & 1)] = vr[d];
    }
  }
}

constexpr int BF_ROWS = 8;

// s[r][c] = scale * q[r] . k[lo + c] for r < 8 and c < ncols (a multiple of 32); qpairs [8][D/2].
inline void qk_bf16(const uint32_t* qpairs, int64_t d2n, const uint16_t* kp, int64_t SP, int64_t lo, int64_t ncols,
                    float* s, int64_t ss, float scale) {
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t c0 = 0; c0 < ncols; c0 += 32) {
    __m512 acc[BF_ROWS][2];
    for (int r = 0; r < BF_ROWS; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t d2 = 0; d2 < d2n; ++d2) {
      const uint16_t* kr = kp + (d2 * SP + lo + c0) * 2;
      const __m512bh k0 = (__m512bh)_mm512_loadu_si512(kr);
      const __m512bh k1 = (__m512bh)_mm512_loadu_si512(kr + 32);
      for (int r = 0; r < BF_ROWS; ++r) {
        const __m512bh qb = (__m512bh)_mm512_set1_epi32(static_cast<int>(qpairs[r * d2n + d2]));
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], qb, k0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], qb, k1);
      }
    }
    for (int r = 0; r < BF_ROWS; ++r) {
      _mm512_storeu_ps(s + r * ss + c0, _mm512_mul_ps(acc[r][0], vscale));
      _mm512_storeu_ps(s + r * ss + c0 + 16, _mm512_mul_ps(acc[r][1], vscale));
    }
  }
}

// o[r][:] = sum_c p[r][c] v[lo + c][:], p as bfloat16 pairs [rows][ncols / 2]; D a multiple of 16.
template <int NV, int ROWS>
inline void pv_bf16_rows(const uint32_t* ppairs, int64_t pstride, const uint16_t* vp, int64_t D, int64_t lo,
                         int64_t ncols, float* o) {
  __m512 acc[ROWS][NV];
  for (int r = 0; r < ROWS; ++r)
    for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_setzero_ps();
  const int64_t t0 = lo >> 1, nt = ncols >> 1;
  for (int64_t t = 0; t < nt; ++t) {
    const uint16_t* vr = vp + ((t0 + t) * D) * 2;
    __m512bh vv[NV];
    for (int x = 0; x < NV; ++x) vv[x] = (__m512bh)_mm512_loadu_si512(vr + x * 32);
    for (int r = 0; r < ROWS; ++r) {
      const __m512bh pb = (__m512bh)_mm512_set1_epi32(static_cast<int>(ppairs[r * pstride + t]));
      for (int x = 0; x < NV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], pb, vv[x]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int x = 0; x < NV; ++x) _mm512_storeu_ps(o + r * D + x * 16, acc[r][x]);
}

template <int NV>
inline void pv_bf16(const uint32_t* ppairs, int64_t pstride, const uint16_t* vp, int64_t D, int64_t lo,
                    int64_t ncols, float* o) {
  constexpr int ROWS = NV <= 2 ? 8 : (NV <= 4 ? 4 : 2);  // ROWS * NV accumulators stay in registers
  for (int r0 = 0; r0 < BF_ROWS; r0 += ROWS)
    pv_bf16_rows<NV, ROWS>(ppairs + r0 * pstride, pstride, vp, D, lo, ncols, o + r0 * D);
}

void pv_bf16_any(const uint32_t* ppairs, int64_t pstride, const uint16_t* vp, int64_t D, int64_t lo, int64_t ncols,
                 float* o) {
  switch (D / 16) {
    case 1: pv_bf16<1>(ppairs, pstride, vp, D, lo, ncols, o); break;
    case 2: pv_bf16<2>(ppairs, pstride, vp, D, lo, ncols, o); break;
    case 3: pv_bf16<3>(ppairs, pstride, vp, D, lo, ncols, o); break;
    case 4: pv_bf16<4>(ppairs, pstride, vp, D, lo, ncols, o); break;
    case 6: pv_bf16<6>(ppairs, pstride, vp, D, lo, ncols, o); break;
    case 8: pv_bf16<8>(ppairs, pstride, vp, D, lo, ncols, o); break;
    default:
      for (int r0 = 0; r0 < BF_ROWS; r0 += 2) {  // 16 * (1..) dims not listed above, one vector at a time
        for (int64_t x = 0; x < D / 16; ++x) {
          __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
          for (int64_t t = 0; t < (ncols >> 1); ++t) {
            const __m512bh vv = (__m512bh)_mm512_loadu_si512(vp + (((lo >> 1) + t) * D + x * 16) * 2);
            acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_set1_epi32(static_cast<int>(ppairs[r0 * pstride + t])), vv);
            acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_set1_epi32(static_cast<int>(ppairs[(r0 + 1) * pstride + t])), vv);
          }
          _mm512_storeu_ps(o + r0 * D + x * 16, acc0);
          _mm512_storeu_ps(o + (r0 + 1) * D + x * 16, acc1);
        }
      }
  }
}

void block_bf16(const Args& a, const PackedBF16& p, const uint8_t* is_global, int64_t bh, int64_t i0, int64_t i1,
                std::vector<float>& scratch, std::vector<int64_t>& extras) {
  const int64_t b = bh / a.H, h = bh % a.H, D = a.D, SP = p.SP, d2n = D / 2;
  const uint16_t* kp = p.kp.data() + bh * D * SP;
  const uint16_t* vp = p.vp.data() + bh * D * SP;
  const uint16_t* qbase = static_cast<const uint16_t*>(a.q) + b * a.qs[0] + h * a.qs[1];
  int64_t lo, ncols;
  block_span(a, i0, i1, &lo, &ncols);
  extra_globals(a, lo, lo + ncols, extras);
  const int64_t ne = static_cast<int64_t>(extras.size()), ss = ncols + ne;
  const int64_t pstride = ncols / 2;  // uint32 pairs per row of probabilities
  // scratch: scores [8][ss] | q pairs [8][D/2] (as uint32) | p pairs [8][ncols/2] | o [8][D] | q float [D]
  scratch.resize(BF_ROWS * ss + BF_ROWS * d2n + BF_ROWS * pstride + BF_ROWS * D + D);
  float* s = scratch.data();
  uint32_t* qpairs = reinterpret_cast<uint32_t*>(s + BF_ROWS * ss);
  uint32_t* ppairs = qpairs + BF_ROWS * d2n;
  float* o = reinterpret_cast<float*>(ppairs + BF_ROWS * pstride);
  float* qf = o + BF_ROWS * D;
  for (int64_t r0 = i0; r0 < i1; r0 += BF_ROWS) {
    const int nr = static_cast<int>(std::min<int64_t>(BF_ROWS, i1 - r0));
    for (int r = 0; r < BF_ROWS; ++r) {
      if (r < nr) std::memcpy(qpairs + r * d2n, qbase + (r0 + r) * a.qs[2], sizeof(uint16_t) * D);
      else std::memset(qpairs + r * d2n, 0, sizeof(uint32_t) * d2n);
    }
    qk_bf16(qpairs, d2n, kp, SP, lo, ncols, s, ss, a.scale);
    float m[BF_ROWS], l[BF_ROWS];
    for (int r = 0; r < nr; ++r) {
      float* sr = s + r * ss;
      if (ne) {
        const uint16_t* qr = qbase + (r0 + r) * a.qs[2];
        for (int64_t d = 0; d < D; ++d) qf[d] = bf16_to_float(qr[d]);
        for (int64_t e = 0; e < ne; ++e) {
          const int64_t g = extras[e];
          float dot = 0.0f;
          for (int64_t d = 0; d < D; ++d) dot += qf[d] * bf16_to_float(kp[((d >> 1) * SP + g) * 2 + (d & 1)]);
          sr[ncols + e] = dot * a.scale;
        }
      }
      mask_row(a, is_global, r0 + r, lo, ncols, sr);
      softmax_row(sr, ncols, ss, &m[r], &l[r]);
      uint16_t* pr = reinterpret_cast<uint16_t*>(ppairs + r * pstride);
      for (int64_t c = 0; c < ncols; ++c) pr[c] = float_to_bf16(sr[c]);
    }
    for (int r = nr; r < BF_ROWS; ++r) std::memset(ppairs + r * pstride, 0, sizeof(uint32_t) * pstride);
    pv_bf16_any(ppairs, pstride, vp, D, lo, ncols, o);
    for (int r = 0; r < nr; ++r) {
      float* orow = o + r * D;
      for (int64_t e = 0; e < ne; ++e) {  // global keys outside the span: float32 products
        const float pe = s[r * ss + ncols + e];
        const int64_t g = extras[e];
        for (int64_t d = 0; d < D; ++d) orow[d] += pe * bf16_to_float(vp[((g >> 1) * D + d) * 2 + (g & 1)]);
      }
      finish_row(a, b, h, r0 + r, orow, m[r], l[r]);
    }
  }
}

#if defined(SECTIONRAG_AMX)
// AMX tiles (bfloat16, D a multiple of 32): a block's 32 queries against 32 keys is four 16 x 16 tile products
// per 32 dims, and 32 probabilities times 32 dims the same. The kernel asks Linux for the tile state once.
bool amx_permitted() {
  static const bool ok = [] {
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return ok;
}

struct alignas(64) TileConfig {
  uint8_t palette_id = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void amx_configure() {  // eight tiles of 16 rows x 64 bytes
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
}

// The tile path's softmax: raw scores s[0, n) (n a multiple of 16) times scale, exp(x - max) rounded to
// bfloat16 into p; returns (max, sum) of the scaled scores. One pass for the max, one for the rest.
inline void softmax_scaled_to_bf16(const float* s, int64_t n, float scale, uint16_t* p, float* m_out, float* l_out) {
  const float m = max512(s, n) * scale;
  const __m512 vmax = _mm512_set1_ps(m * LOG2E), vscale = _mm512_set1_ps(scale * LOG2E);
  __m512 vl = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __m512 e = exp2_nonpositive<4>(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vmax));
    vl = _mm512_add_ps(vl, e);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + j), (__m256i)_mm512_cvtneps_pbh(e));
  }
  *m_out = m;
  *l_out = _mm512_reduce_add_ps(vl);
}

// The 2 x 2 tile product both loops use: C tiles 0-3 (rows 0-15 / 16-31 x columns 0-15 / 16-31) from A
// tiles 4-5 (the two row halves) and B tiles 6-7 (the two column halves).
inline void tiles_zero() { _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); }
inline void tiles_multiply() {
  _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
}
inline void tiles_store(float* c, int64_t row_floats) {  // a 32 x 32 float32 block at c
  _tile_stored(0, c, row_floats * 4);
  _tile_stored(1, c + 16, row_floats * 4);
  _tile_stored(2, c + 16 * row_floats, row_floats * 4);
  _tile_stored(3, c + 16 * row_floats + 16, row_floats * 4);
}

void block_amx(const Args& a, const PackedBF16& p, const uint8_t* is_global, int64_t bh, int64_t i0, int64_t i1,
               std::vector<float>& scratch, std::vector<int64_t>& extras) {
  static_assert(ROWS_PER_BLOCK == 32, "the tile loops take 32 query rows");
  const int64_t b = bh / a.H, h = bh % a.H, D = a.D, SP = p.SP;
  const uint16_t* kp = p.kp.data() + bh * D * SP;
  const uint16_t* vp = p.vp.data() + bh * D * SP;
  const uint16_t* qbase = static_cast<const uint16_t*>(a.q) + b * a.qs[0] + h * a.qs[1];
  int64_t lo, ncols;
  block_span(a, i0, i1, &lo, &ncols);
  extra_globals(a, lo, lo + ncols, extras);
  // Global keys outside the span are the region's columns [0, ng) (ng = G rounded up to 32), masked
  // where they fall inside the span; the region is left out when no global key is outside it.
  const int64_t ng = extras.empty() ? 0 : (a.n_globals + 31) / 32 * 32, ss = ncols + ng, nr = i1 - i0;
  // scratch: scores [32][ss] | o [32][D] | q bf16 [32][D] | p bf16 [32][ss]
  scratch.resize(32 * ss + 32 * D + 16 * D + 16 * ss);
  float* s = scratch.data();
  float* o = s + 32 * ss;
  uint16_t* qb = reinterpret_cast<uint16_t*>(o + 32 * D);
  uint16_t* pb = qb + 32 * D;
  for (int64_t r = 0; r < 32; ++r) {
    if (r < nr) std::memcpy(qb + r * D, qbase + (i0 + r) * a.qs[2], sizeof(uint16_t) * D);
    else std::memset(qb + r * D, 0, sizeof(uint16_t) * D);
  }
  const bool one_step = D == 32;  // the queries' two tiles then stay loaded for the whole span
  if (one_step) {
    _tile_loadd(4, qb, D * 2);
    _tile_loadd(5, qb + 16 * D, D * 2);
  }
  for (int64_t c0 = 0; c0 < ss; c0 += 32) {  // scores, unscaled
    const int64_t col = c0 < ncols ? lo + c0 : p.GB + (c0 - ncols);
    tiles_zero();
    for (int64_t dk = 0; dk < D; dk += 32) {
      if (!one_step) {
        _tile_loadd(4, qb + dk, D * 2);
        _tile_loadd(5, qb + 16 * D + dk, D * 2);
      }
      _tile_loadd(6, kp + ((dk / 2) * SP + col) * 2, SP * 4);
      _tile_loadd(7, kp + ((dk / 2) * SP + col + 16) * 2, SP * 4);
      tiles_multiply();
    }
    tiles_store(s + c0, ss);
  }
  float m[32], l[32];
  for (int64_t r = 0; r < nr; ++r) {
    float* sr = s + r * ss;
    mask_row_and_region(a, is_global, i0 + r, lo, ncols, ng, sr);
    softmax_scaled_to_bf16(sr, ss, a.scale, pb + r * ss, &m[r], &l[r]);
  }
  if (nr < 32) std::memset(pb + nr * ss, 0, sizeof(uint16_t) * (32 - nr) * ss);
  for (int64_t dc = 0; dc < D; dc += 32) {  // probabilities times values
    tiles_zero();
    for (int64_t kk = 0; kk < ss; kk += 32) {
      const int64_t col = kk < ncols ? lo + kk : p.GB + (kk - ncols);
      _tile_loadd(4, pb + kk, ss * 2);
      _tile_loadd(5, pb + 16 * ss + kk, ss * 2);
      _tile_loadd(6, vp + ((col / 2) * D + dc) * 2, D * 4);
      _tile_loadd(7, vp + ((col / 2) * D + dc + 16) * 2, D * 4);
      tiles_multiply();
    }
    tiles_store(o + dc, D);
  }
  for (int64_t r = 0; r < nr; ++r) finish_row(a, b, h, i0 + r, o + r * D, m[r], l[r]);
}
#endif
#endif

template <typename Fn>
void parallel(int64_t n, int threads, Fn fn) {
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  if (threads == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    pool.emplace_back([=, &fn] { fn(begin, end); });
  }
  for (auto& th : pool) th.join();
}

template <typename Packed, typename BlockFn>
void run_blocks(const Args& a, int threads, Packed& p, BlockFn block, bool tiles) {
  const int64_t BH = a.B * a.H, nb = (a.S + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
  std::vector<uint8_t> is_global(p.SP, 0);
  for (int64_t g = 0; g < a.n_globals; ++g) is_global[a.globals[g]] = 1;
  parallel(BH * nb, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    std::vector<int64_t> extras;
#if defined(SECTIONRAG_AMX)
    if (tiles) amx_configure();
#endif
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / nb, blk = task % nb;
      const int64_t i0 = blk * ROWS_PER_BLOCK, i1 = std::min<int64_t>(a.S, i0 + ROWS_PER_BLOCK);
      block(a, p, is_global.data(), bh, i0, i1, scratch, extras);
    }
#if defined(SECTIONRAG_AMX)
    if (tiles) _tile_release();
#endif
  });
}

// Columns of the packed arrays: the keys, padding past any span's last column, then the global keys'
// copies (32 aligned).
template <typename Packed>
void size_packed(const Args& a, Packed& p) {
  p.GB = (a.S + 2 * COL_ALIGN + 31) / 32 * 32;
  p.SP = p.GB + (a.n_globals + 31) / 32 * 32;
  p.resize(static_cast<size_t>(a.B * a.H * a.D * p.SP));
}

template <typename BlockFn>
void run_f32(const Args& a, int threads, BlockFn block, bool panels = false) {
  static thread_local PackedF32 kept;
  PackedF32& p = kept;  // lambdas on worker threads must see the calling thread's buffers
  size_packed(a, p);
  p.panels = panels;
  parallel(a.B * a.H, threads, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) pack_f32(a, bh, p);
  });
  run_blocks(a, threads, p, block, false);
  p.trim();
}

#if defined(__AVX512BF16__)
template <typename BlockFn>
void run_bf16(const Args& a, int threads, BlockFn block, bool tiles) {
  static thread_local PackedBF16 kept;
  PackedBF16& p = kept;  // lambdas on worker threads must see the calling thread's buffers
  size_packed(a, p);
  constexpr int64_t CHUNK = 256;
  const int64_t chunks = (a.S + CHUNK - 1) / CHUNK;
  parallel(a.B * chunks, threads, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / chunks, j0 = (t % chunks) * CHUNK;
      pack_bf16_rows(a, b, j0, std::min<int64_t>(a.S, j0 + CHUNK), p);
    }
  });
  parallel(a.B * a.H, threads, [&](int64_t begin, int64_t end) {
    for (int64_t bh = begin; bh < end; ++bh) pack_bf16_tail(a, bh, p);
  });
  run_blocks(a, threads, p, block, tiles);
  p.trim();
}
#endif

}  // namespace

extern "C" {

// Returns 0 on success, a positive code for arguments it cannot take (see kernels/impl/cpp.py).
int sectionrag_band_attention(const void* q, const void* k, const void* v, void* out, float* lse, int64_t B,
                              int64_t H, int64_t S, int64_t D, const int64_t* qs, const int64_t* ks,
                              const int64_t* vs, const int64_t* os, int64_t left, int64_t right, const int64_t* globals,
                              int64_t n_globals, float scale, int bf16_in, int bf16_out, int threads) {
  if (B < 1 || H < 1 || S < 1 || D < 1 || left < 0 || right < 0) return 1;
  for (int64_t g = 0; g < n_globals; ++g)
    if (globals[g] < 0 || globals[g] >= S || (g && globals[g] <= globals[g - 1])) return 2;
  Args a{q, k, v, out, lse, B, H, S, D, {qs[0], qs[1], qs[2]}, {ks[0], ks[1], ks[2]}, {vs[0], vs[1], vs[2]},
         {os[0], os[1], os[2]}, std::min(left, S), std::min(right, S), globals, n_globals, scale, bf16_in != 0, bf16_out != 0};
#if defined(SECTIONRAG_AMX)
  if (a.bf16_in && D % 32 == 0 && !std::getenv("SECTIONRAG_NO_AMX") && amx_permitted()) {
    run_bf16(a, threads, block_amx, true);
    return 0;
  }
#endif
#if defined(__AVX512BF16__)
  if (a.bf16_in && D % 16 == 0) {
    run_bf16(a, threads, block_bf16, false);
    return 0;
  }
#endif
#if defined(__AVX512F__)
  switch (D) {
    case 16: run_f32(a, threads, block_f32_avx512<1>); return 0;
    case 32: run_f32(a, threads, block_f32_avx512<2>); return 0;
    case 48: run_f32(a, threads, block_f32_avx512<3>); return 0;
    case 64: run_f32(a, threads, block_f32_avx512<4>); return 0;
    case 128: run_f32(a, threads, block_f32_avx512<8>); return 0;
    default: break;
  }
#endif
#if defined(SECTIONRAG_AVX2)
  switch (D) {
    case 16: run_f32(a, threads, block_f32_avx2<2>, true); return 0;
    case 32: run_f32(a, threads, block_f32_avx2<4>, true); return 0;
    case 48: run_f32(a, threads, block_f32_avx2<6>, true); return 0;
    case 64: run_f32(a, threads, block_f32_avx2<8>, true); return 0;
    case 128: run_f32(a, threads, block_f32_avx2<16>, true); return 0;
    default: break;
  }
#endif
  switch (D) {
    case 16: run_f32(a, threads, block_f32<16>); break;
    case 32: run_f32(a, threads, block_f32<32>); break;
    case 64: run_f32(a, threads, block_f32<64>); break;
    default: run_f32(a, threads, block_f32<0>); break;
  }
  return 0;
}

}  // extern "C"
