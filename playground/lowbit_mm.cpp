// y = x W^T in float32, where W is kept as a GGUF file's own integer codes:
//   w[n, 32 g + j] = scale[n, g] * code[n, g, j] + minimum[n, g]
// (Q4_1, Q4_K, Q5_0 and Q8_0 are all of this form; see playground/lowbit.py).
//
// A decode step on a CPU is bound by the bytes it reads: the codes are 4 or 8 bits per weight
// against the 32 of float32 weights. The arithmetic stays float32 (the activations are never rounded
// to a narrower type), so the result is the float32 model's up to the order of summation:
// `mm`: per output, sum over groups of scale * (codes . x) + minimum * sum(x), accumulated in float32
// lanes. It is meant for a few rows of x (decoding, a few beams), where reading the weights is the
// cost; for many rows (a prompt) a float32 matmul on rebuilt weights is faster (lowbit.py).
// `dequantize`: rows of W rebuilt in float32 exactly as the GGUF's dequantization rounds them (a
// product, then a sum: the file is compiled with -ffp-contract=off; `mm`'s fused multiply-adds are
// explicit intrinsics).
//
// Layout: bits 4 -> codes [N, G, 16] uint8, byte j of a group holding element j (low nibble) and
// j + 16 (high nibble), as GGUF's Q4 blocks do; bits 8 -> codes [N, G, 32] uint8. scale, minimum:
// [N, G] float32. x: [M, K] float32, K = 32 G. AVX-512 where the compiler targets it (the build uses
// -march=native), plain loops otherwise. What it leaves out: GPUs, bias, codes wider than 8 bits,
// groups other than 32 (Q6_K's 16 stay float32 in lowbit.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kGroup = 32;
constexpr int64_t kLanes = 16;

template <int Bits>
inline int64_t group_bytes() { return Bits == 4 ? kGroup / 2 : kGroup; }

// One row of W (K floats), rounded as the GGUF's dequantization rounds it.
template <int Bits>
void dequantize_row(const uint8_t* __restrict codes, const float* __restrict scale, const float* __restrict minimum,
                    int64_t groups, float* __restrict out) {
  for (int64_t g = 0; g < groups; ++g) {
    const float s = scale[g], m = minimum[g];
    const uint8_t* __restrict q = codes + g * group_bytes<Bits>();
    float* __restrict w = out + g * kGroup;
    for (int j = 0; j < 16; ++j) {
      const float first = static_cast<float>(Bits == 4 ? (q[j] & 0x0F) : q[j]);
      const float second = static_cast<float>(Bits == 4 ? (q[j] >> 4) : q[j + 16]);
      w[j] = s * first + m;
      w[j + 16] = s * second + m;
    }
  }
}

// One output from the codes: sum over groups of scale * (codes . x) + minimum * sum(x).
// `x_sums`: sum(x) per group.
template <int Bits>
inline float row_dot(const uint8_t* __restrict codes, const float* __restrict scale,
                     const float* __restrict minimum, const float* __restrict x,
                     const float* __restrict x_sums, int64_t groups) {
  float offset = 0;
  for (int64_t g = 0; g < groups; ++g) offset += minimum[g] * x_sums[g];
#if defined(__AVX512F__)
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};  // two chains: even and odd groups
  const __m128i low_nibbles = _mm_set1_epi8(0x0F);
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* q = codes + g * group_bytes<Bits>();
    const float* xg = x + g * kGroup;
    __m128i first, second;
    if (Bits == 4) {
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      first = _mm_and_si128(packed, low_nibbles);
      second = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
    } else {
      first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      second = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16));
    }
    __m512 part = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(first)), _mm512_loadu_ps(xg));
    part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(second)), _mm512_loadu_ps(xg + 16), part);
    acc[g & 1] = _mm512_fmadd_ps(_mm512_set1_ps(scale[g]), part, acc[g & 1]);
  }
  return offset + _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
#else
  float acc[kLanes] = {0};
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* q = codes + g * group_bytes<Bits>();
    const float* xg = x + g * kGroup;
    for (int j = 0; j < kLanes; ++j) {
      const float first = static_cast<float>(Bits == 4 ? (q[j] & 0x0F) : q[j]);
      const float second = static_cast<float>(Bits == 4 ? (q[j] >> 4) : q[j + 16]);
      acc[j] += scale[g] * (first * xg[j] + second * xg[j + 16]);
    }
  }
  float total = offset;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
#endif
}

template <int Bits>
at::Tensor matmul(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum) {
  const int64_t m_rows = x.size(0), k = x.size(1), n_rows = codes.size(0), groups = k / kGroup;
  at::Tensor y = at::empty({m_rows, n_rows}, x.options());
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  const float* mp = minimum.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t row_bytes = groups * group_bytes<Bits>();
  std::vector<float> sums(m_rows * groups, 0.0f);
  for (int64_t i = 0; i < m_rows * groups; ++i)
    for (int j = 0; j < kGroup; ++j) sums[i] += xp[i * kGroup + j];
  const float* xs = sums.data();
  at::parallel_for(0, n_rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t r = 0; r < m_rows; ++r)
        yp[r * n_rows + n] = row_dot<Bits>(cp + n * row_bytes, sp + n * groups, mp + n * groups, xp + r * k,
                                           xs + r * groups, groups);
  });
  return y;
}

void check(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum, int64_t bits) {
  TORCH_CHECK(bits == 4 || bits == 8, "bits: 4 or 8");
  TORCH_CHECK(codes.scalar_type() == at::kByte && codes.is_contiguous() && codes.dim() == 3, "codes: contiguous uint8 [N, G, bytes]");
  TORCH_CHECK(codes.size(2) == (bits == 4 ? kGroup / 2 : kGroup), "codes: 16 bytes per group at 4 bits, 32 at 8");
  TORCH_CHECK(scale.scalar_type() == at::kFloat && minimum.scalar_type() == at::kFloat && scale.is_contiguous()
              && minimum.is_contiguous() && scale.sizes() == codes.sizes().slice(0, 2)
              && minimum.sizes() == scale.sizes(), "scale, minimum: contiguous float32 [N, G]");
}

at::Tensor lowbit_mm(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scale,
                     const at::Tensor& minimum, int64_t bits) {
  check(codes, scale, minimum, bits);
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(), "x: contiguous float32 [M, K]");
  TORCH_CHECK(x.size(1) == scale.size(1) * kGroup, "x: K must be 32 x the groups");
  return bits == 4 ? matmul<4>(x, codes, scale, minimum) : matmul<8>(x, codes, scale, minimum);
}

at::Tensor dequantize(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum, int64_t bits,
                      int64_t start, int64_t count) {
  check(codes, scale, minimum, bits);
  TORCH_CHECK(0 <= start && 0 <= count && start + count <= codes.size(0), "rows out of range");
  const int64_t groups = scale.size(1), k = groups * kGroup, row_bytes = codes.size(1) * codes.size(2);
  at::Tensor w = at::empty({count, k}, scale.options());
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const float* sp = scale.data_ptr<float>();
  const float* mp = minimum.data_ptr<float>();
  float* wp = w.data_ptr<float>();
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = start + i;
      if (bits == 4)
        dequantize_row<4>(cp + n * row_bytes, sp + n * groups, mp + n * groups, groups, wp + i * k);
      else
        dequantize_row<8>(cp + n * row_bytes, sp + n * groups, mp + n * groups, groups, wp + i * k);
    }
  });
  return w;
}

}  // namespace

TORCH_LIBRARY(playground_lowbit, m) {
  m.def("mm(Tensor x, Tensor codes, Tensor scale, Tensor minimum, int bits) -> Tensor");
  m.def("dequantize(Tensor codes, Tensor scale, Tensor minimum, int bits, int start, int count) -> Tensor");
}

TORCH_LIBRARY_IMPL(playground_lowbit, CPU, m) {
  m.impl("mm", &lowbit_mm);
  m.impl("dequantize", &dequantize);
}
