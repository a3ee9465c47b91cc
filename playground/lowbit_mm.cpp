// y = x W^T in float32, where W is kept as a GGUF file's own integer codes:
//   w[n, 32 g + j] = scale[n, g] * code[n, g, j] + minimum[n, g]
// (Q4_1, Q4_K, Q5_0 and Q8_0 are all of this form; see playground/lowbit.py).
//
// A decode step on a CPU is bound by the bytes it reads: the codes are 4, 5 or 8 bits per weight
// against the 32 of float32 weights. The arithmetic stays float32 (the activations are never rounded
// to a narrower type), so the result is the float32 model's up to the order of summation:
// `mm`: per output, sum over groups of scale * (codes . x) + minimum * sum(x), accumulated in float32
// lanes. It is meant for a few rows of x (decoding, a few beams), where reading the weights is the
// cost; for many rows (a prompt) lowbit.py multiplies by the float32 weight, which `dequantize`
// rebuilds bit for bit.
// `dequantize`: rows of W rebuilt in float32 exactly as the GGUF's dequantization rounds them (a
// product, then a sum: the file is compiled with -ffp-contract=off; `mm`'s fused multiply-adds are
// explicit intrinsics).
//
// Layout: bits 4 -> codes [N, G, 16] uint8, byte j of a group holding element j (low nibble) and
// j + 16 (high nibble), as GGUF's Q4 blocks do; bits 5 -> [N, G, 20]: those 16 bytes, then the fifth
// bits as one little-endian 32-bit word (bit j for element j), as Q5_0 does; bits 8 -> [N, G, 32].
// scale, minimum: [N, G] float16 (where the file's numbers are float16, as in Q4_1, Q5_0 and Q8_0)
// or float32. x: [M, K] float32, K = 32 G. AVX-512 where the compiler targets it (the build uses
// -march=native), plain loops otherwise. What it leaves out: GPUs, bias, codes wider than 8 bits,
// groups other than 32 (Q6_K's 16 stay float32 in lowbit.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kGroup = 32;
constexpr int64_t kLanes = 16;

// Bytes of one group's codes: 4 bits -> 16 (two per byte), 5 bits -> 16 + 4 (the fifth bits as one
// 32-bit word, bit j for element j, as Q5_0 keeps them), 8 bits -> 32.
template <int Bits>
constexpr int64_t group_bytes() { return Bits == 4 ? 16 : Bits == 5 ? 20 : 32; }

// Element j (0..31) of a group's codes.
template <int Bits>
inline uint32_t code_at(const uint8_t* q, int j) {
  if (Bits == 8) return q[j];
  const uint32_t nibble = j < 16 ? (q[j] & 0x0F) : (q[j - 16] >> 4);
  if (Bits == 4) return nibble;
  uint32_t high;
  std::memcpy(&high, q + 16, 4);
  return nibble | (((high >> j) & 1u) << 4);
}

// A stored scale or minimum as float32 (stored as float16 where that is exact).
inline float to_float(float v) { return v; }
inline float to_float(c10::Half v) {
#if defined(__F16C__)
  return _cvtsh_ss(v.x);
#else
  return static_cast<float>(v);
#endif
}

// One row of W (K floats), rounded as the GGUF's dequantization rounds it (a product, then a sum).
template <int Bits, typename S>
void dequantize_row(const uint8_t* __restrict codes, const S* __restrict scale, const S* __restrict minimum,
                    int64_t groups, float* __restrict out) {
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* q = codes + g * group_bytes<Bits>();
    const float s = to_float(scale[g]), m = to_float(minimum[g]);
    for (int j = 0; j < kGroup; ++j) out[g * kGroup + j] = s * static_cast<float>(code_at<Bits>(q, j)) + m;
  }
}

// One output from the codes: sum over groups of scale * (codes . x) + minimum * sum(x).
// `x_sums`: sum(x) per group.
template <int Bits, typename S>
inline float row_dot(const uint8_t* __restrict codes, const S* __restrict scale,
                     const S* __restrict minimum, const float* __restrict x,
                     const float* __restrict x_sums, int64_t groups) {
  float offset = 0;
  for (int64_t g = 0; g < groups; ++g) offset += to_float(minimum[g]) * x_sums[g];
#if defined(__AVX512F__)
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};  // two chains: even and odd groups
  const __m128i low_nibbles = _mm_set1_epi8(0x0F);
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* q = codes + g * group_bytes<Bits>();
    const float* xg = x + g * kGroup;
    __m512i first, second;
    if (Bits == 8) {
      first = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      second = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
    } else {  // the nibbles split while still bytes (cheaper here than on 16 lanes of 32 bits)
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      first = _mm512_cvtepu8_epi32(_mm_and_si128(packed, low_nibbles));
      second = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles));
      if (Bits == 5) {  // the fifth bits: add 16 where set
        uint32_t high;
        std::memcpy(&high, q + 16, 4);
        first = _mm512_mask_add_epi32(first, static_cast<__mmask16>(high & 0xFFFF), first, sixteen);
        second = _mm512_mask_add_epi32(second, static_cast<__mmask16>(high >> 16), second, sixteen);
      }
    }
    __m512 part = _mm512_mul_ps(_mm512_cvtepi32_ps(first), _mm512_loadu_ps(xg));
    part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(second), _mm512_loadu_ps(xg + 16), part);
    acc[g & 1] = _mm512_fmadd_ps(_mm512_set1_ps(to_float(scale[g])), part, acc[g & 1]);
  }
  return offset + _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
#else
  float acc[kLanes] = {0};
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* q = codes + g * group_bytes<Bits>();
    const float* xg = x + g * kGroup;
    for (int j = 0; j < kLanes; ++j) {
      const float part = static_cast<float>(code_at<Bits>(q, j)) * xg[j]
                         + static_cast<float>(code_at<Bits>(q, j + 16)) * xg[j + 16];
      acc[j] += to_float(scale[g]) * part;
    }
  }
  float total = offset;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
#endif
}

template <int Bits, typename S>
at::Tensor matmul(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum) {
  const int64_t m_rows = x.size(0), k = x.size(1), n_rows = codes.size(0), groups = k / kGroup;
  at::Tensor y = at::empty({m_rows, n_rows}, x.options());
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const S* sp = reinterpret_cast<const S*>(scale.data_ptr());
  const S* mp = reinterpret_cast<const S*>(minimum.data_ptr());
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  std::vector<float> sums(m_rows * groups, 0.0f);
  for (int64_t i = 0; i < m_rows * groups; ++i)
    for (int j = 0; j < kGroup; ++j) sums[i] += xp[i * kGroup + j];
  const float* xs = sums.data();
  at::parallel_for(0, n_rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t r = 0; r < m_rows; ++r)
        yp[r * n_rows + n] = row_dot<Bits, S>(cp + n * groups * group_bytes<Bits>(), sp + n * groups, mp + n * groups,
                                              xp + r * k, xs + r * groups, groups);
  });
  return y;
}

template <int Bits, typename S>
void dequantize_rows(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum, int64_t start,
                     at::Tensor& w) {
  const int64_t groups = scale.size(1), k = groups * kGroup;
  const uint8_t* cp = codes.data_ptr<uint8_t>();
  const S* sp = reinterpret_cast<const S*>(scale.data_ptr());
  const S* mp = reinterpret_cast<const S*>(minimum.data_ptr());
  float* wp = w.data_ptr<float>();
  at::parallel_for(0, w.size(0), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = start + i;
      dequantize_row<Bits, S>(cp + n * groups * group_bytes<Bits>(), sp + n * groups, mp + n * groups, groups, wp + i * k);
    }
  });
}

// The instantiation for the tensors' code width and scale type.
#define PLAYGROUND_LOWBIT_DISPATCH(bits, scale, CALL)                                         \
  [&] {                                                                                       \
    const bool half = (scale).scalar_type() == at::kHalf;                                     \
    if ((bits) == 4) return half ? CALL(4, c10::Half) : CALL(4, float);                       \
    if ((bits) == 5) return half ? CALL(5, c10::Half) : CALL(5, float);                       \
    return half ? CALL(8, c10::Half) : CALL(8, float);                                        \
  }()

void check(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum, int64_t bits) {
  TORCH_CHECK(bits == 4 || bits == 5 || bits == 8, "bits: 4, 5 or 8");
  const int64_t bytes = bits == 4 ? group_bytes<4>() : bits == 5 ? group_bytes<5>() : group_bytes<8>();
  TORCH_CHECK(codes.scalar_type() == at::kByte && codes.is_contiguous() && codes.dim() == 3,
              "codes: contiguous uint8 [N, G, bytes]");
  TORCH_CHECK(codes.size(2) == bytes, "codes: 16 bytes per group at 4 bits, 20 at 5, 32 at 8");
  TORCH_CHECK((scale.scalar_type() == at::kFloat || scale.scalar_type() == at::kHalf)
              && minimum.scalar_type() == scale.scalar_type() && scale.is_contiguous() && minimum.is_contiguous()
              && scale.sizes() == codes.sizes().slice(0, 2) && minimum.sizes() == scale.sizes(),
              "scale, minimum: contiguous float32 or float16 [N, G], the same type");
}

at::Tensor lowbit_mm(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scale,
                     const at::Tensor& minimum, int64_t bits) {
  check(codes, scale, minimum, bits);
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(), "x: contiguous float32 [M, K]");
  TORCH_CHECK(x.size(1) == scale.size(1) * kGroup, "x: K must be 32 x the groups");
#define CALL(B, S) matmul<B, S>(x, codes, scale, minimum)
  return PLAYGROUND_LOWBIT_DISPATCH(bits, scale, CALL);
#undef CALL
}

at::Tensor dequantize(const at::Tensor& codes, const at::Tensor& scale, const at::Tensor& minimum, int64_t bits,
                      int64_t start, int64_t count) {
  check(codes, scale, minimum, bits);
  TORCH_CHECK(0 <= start && 0 <= count && start + count <= codes.size(0), "rows out of range");
  at::Tensor w = at::empty({count, scale.size(1) * kGroup}, scale.options().dtype(at::kFloat));
#define CALL(B, S) (dequantize_rows<B, S>(codes, scale, minimum, start, w), 0)
  PLAYGROUND_LOWBIT_DISPATCH(bits, scale, CALL);
#undef CALL
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
