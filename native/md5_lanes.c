// MD5 of several independent messages at once (the ETags of concurrent uploads), one message per 32-bit
// lane of a SIMD register.
//
// MD5 is serial within a message: each of its 64 steps per block needs the previous step's result, so one
// message runs at the latency of that chain (~4.5 cycles per byte with OpenSSL's assembly here) and leaves
// most of the core idle. Eight messages in the eight lanes of a ymm register go through the same chain
// together: eight blocks for little more than the cost of one. This is MinIO's md5-simd idea; the code is
// ours, written from RFC 1321.
//
// Two builds of the same steps: AVX2 (rotate = two shifts and an or; F/G/I in two or three logic ops) and
// AVX-512VL on ymm registers (vprold rotates in one op, vpternlogd computes F/G/H/I in one), chosen at run
// time. Message words are loaded per lane and transposed with unpack/permute (no gathers).

#include "md5_lanes.h"

#include <cpuid.h>
#include <immintrin.h>

static const uint32_t md5_k[64] = {
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

md5_lanes_kind md5_lanes_detect(void) {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, 0) < 7) return MD5_LANES_NONE;
  __cpuid(1, a, b, c, d);
  if (!(c & (1u << 27))) return MD5_LANES_NONE; // OSXSAVE: XGETBV is available
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  (void)xhi;
  if ((xlo & 0x6u) != 0x6u) return MD5_LANES_NONE; // the OS saves XMM and YMM state
  __cpuid_count(7, 0, a, b, c, d);
  if (!(b & (1u << 5))) return MD5_LANES_NONE; // AVX2
  // AVX512F + AVX512VL, and the OS saves opmask and ZMM state
  if ((b & (1u << 16)) && (b & (1u << 31)) && (xlo & 0xE6u) == 0xE6u) return MD5_LANES_AVX512VL;
  return MD5_LANES_AVX2;
}

// Eight lanes' 64-byte blocks at `offset` → m[w] = word w of every lane (lane i in element i).
#define LOAD_TRANSPOSED(m, data, offset)                                                     \
  do {                                                                                       \
    for (int half = 0; half < 2; half++) {                                                   \
      __m256i r[8];                                                                          \
      for (int lane = 0; lane < 8; lane++) {                                                 \
        r[lane] = _mm256_loadu_si256((const __m256i *)(data[lane] + (offset) + 32 * half));  \
      }                                                                                      \
      __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]); \
      __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]); \
      __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]); \
      __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]); \
      __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);        \
      __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);        \
      __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);        \
      __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);        \
      __m256i *w = (m) + 8 * half;                                                           \
      w[0] = _mm256_permute2x128_si256(u0, u4, 0x20);                                        \
      w[1] = _mm256_permute2x128_si256(u1, u5, 0x20);                                        \
      w[2] = _mm256_permute2x128_si256(u2, u6, 0x20);                                        \
      w[3] = _mm256_permute2x128_si256(u3, u7, 0x20);                                        \
      w[4] = _mm256_permute2x128_si256(u0, u4, 0x31);                                        \
      w[5] = _mm256_permute2x128_si256(u1, u5, 0x31);                                        \
      w[6] = _mm256_permute2x128_si256(u2, u6, 0x31);                                        \
      w[7] = _mm256_permute2x128_si256(u3, u7, 0x31);                                        \
    }                                                                                        \
  } while (0)

// One step: a = b + rotl(a + fn(b, c, d) + K[i] + M[g], s). ROTL and the round functions are defined per build.
// a + K[i] + M[g] does not depend on the previous step, so it is summed first: the chain from the newest word
// (b) is then fn, one add, the rotate and the add of b.
#define STEP(fn, a, b, c, d, g, i, s)                                                                        \
  a = _mm256_add_epi32(_mm256_add_epi32(a, _mm256_add_epi32(m[g], _mm256_set1_epi32((int)md5_k[i]))), fn(b, c, d)); \
  a = _mm256_add_epi32(b, ROTL(a, s))

// The 64 steps of one block (RFC 1321 §3.4): four rounds of sixteen, message order and shifts per round.
#define MD5_BLOCK_STEPS                                                                                      \
  STEP(FF, a, b, c, d, 0, 0, 7); STEP(FF, d, a, b, c, 1, 1, 12); STEP(FF, c, d, a, b, 2, 2, 17); STEP(FF, b, c, d, a, 3, 3, 22); \
  STEP(FF, a, b, c, d, 4, 4, 7); STEP(FF, d, a, b, c, 5, 5, 12); STEP(FF, c, d, a, b, 6, 6, 17); STEP(FF, b, c, d, a, 7, 7, 22); \
  STEP(FF, a, b, c, d, 8, 8, 7); STEP(FF, d, a, b, c, 9, 9, 12); STEP(FF, c, d, a, b, 10, 10, 17); STEP(FF, b, c, d, a, 11, 11, 22); \
  STEP(FF, a, b, c, d, 12, 12, 7); STEP(FF, d, a, b, c, 13, 13, 12); STEP(FF, c, d, a, b, 14, 14, 17); STEP(FF, b, c, d, a, 15, 15, 22); \
  STEP(GG, a, b, c, d, 1, 16, 5); STEP(GG, d, a, b, c, 6, 17, 9); STEP(GG, c, d, a, b, 11, 18, 14); STEP(GG, b, c, d, a, 0, 19, 20); \
  STEP(GG, a, b, c, d, 5, 20, 5); STEP(GG, d, a, b, c, 10, 21, 9); STEP(GG, c, d, a, b, 15, 22, 14); STEP(GG, b, c, d, a, 4, 23, 20); \
  STEP(GG, a, b, c, d, 9, 24, 5); STEP(GG, d, a, b, c, 14, 25, 9); STEP(GG, c, d, a, b, 3, 26, 14); STEP(GG, b, c, d, a, 8, 27, 20); \
  STEP(GG, a, b, c, d, 13, 28, 5); STEP(GG, d, a, b, c, 2, 29, 9); STEP(GG, c, d, a, b, 7, 30, 14); STEP(GG, b, c, d, a, 12, 31, 20); \
  STEP(HH, a, b, c, d, 5, 32, 4); STEP(HH, d, a, b, c, 8, 33, 11); STEP(HH, c, d, a, b, 11, 34, 16); STEP(HH, b, c, d, a, 14, 35, 23); \
  STEP(HH, a, b, c, d, 1, 36, 4); STEP(HH, d, a, b, c, 4, 37, 11); STEP(HH, c, d, a, b, 7, 38, 16); STEP(HH, b, c, d, a, 10, 39, 23); \
  STEP(HH, a, b, c, d, 13, 40, 4); STEP(HH, d, a, b, c, 0, 41, 11); STEP(HH, c, d, a, b, 3, 42, 16); STEP(HH, b, c, d, a, 6, 43, 23); \
  STEP(HH, a, b, c, d, 9, 44, 4); STEP(HH, d, a, b, c, 12, 45, 11); STEP(HH, c, d, a, b, 15, 46, 16); STEP(HH, b, c, d, a, 2, 47, 23); \
  STEP(II, a, b, c, d, 0, 48, 6); STEP(II, d, a, b, c, 7, 49, 10); STEP(II, c, d, a, b, 14, 50, 15); STEP(II, b, c, d, a, 5, 51, 21); \
  STEP(II, a, b, c, d, 12, 52, 6); STEP(II, d, a, b, c, 3, 53, 10); STEP(II, c, d, a, b, 10, 54, 15); STEP(II, b, c, d, a, 1, 55, 21); \
  STEP(II, a, b, c, d, 8, 56, 6); STEP(II, d, a, b, c, 15, 57, 10); STEP(II, c, d, a, b, 6, 58, 15); STEP(II, b, c, d, a, 13, 59, 21); \
  STEP(II, a, b, c, d, 4, 60, 6); STEP(II, d, a, b, c, 11, 61, 10); STEP(II, c, d, a, b, 2, 62, 15); STEP(II, b, c, d, a, 9, 63, 21)

#define MD5_LANES_BODY                                                              \
  __m256i a = _mm256_loadu_si256((const __m256i *)(state + 0 * MD5_LANES));         \
  __m256i b = _mm256_loadu_si256((const __m256i *)(state + 1 * MD5_LANES));         \
  __m256i c = _mm256_loadu_si256((const __m256i *)(state + 2 * MD5_LANES));         \
  __m256i d = _mm256_loadu_si256((const __m256i *)(state + 3 * MD5_LANES));         \
  for (size_t block = 0; block < blocks; block++) {                                 \
    __m256i m[16];                                                                  \
    LOAD_TRANSPOSED(m, data, block * 64);                                           \
    const __m256i a0 = a, b0 = b, c0 = c, d0 = d;                                   \
    MD5_BLOCK_STEPS;                                                                \
    a = _mm256_add_epi32(a, a0);                                                    \
    b = _mm256_add_epi32(b, b0);                                                    \
    c = _mm256_add_epi32(c, c0);                                                    \
    d = _mm256_add_epi32(d, d0);                                                    \
  }                                                                                 \
  _mm256_storeu_si256((__m256i *)(state + 0 * MD5_LANES), a);                       \
  _mm256_storeu_si256((__m256i *)(state + 1 * MD5_LANES), b);                       \
  _mm256_storeu_si256((__m256i *)(state + 2 * MD5_LANES), c);                       \
  _mm256_storeu_si256((__m256i *)(state + 3 * MD5_LANES), d)

// AVX2: F = d ^ (b & (c ^ d)), G = c ^ (d & (b ^ c)), H = b ^ c ^ d, I = c ^ (b | ~d).
#define ROTL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define FF(x, y, z) _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
#define GG(x, y, z) _mm256_xor_si256(y, _mm256_and_si256(z, _mm256_xor_si256(x, y)))
#define HH(x, y, z) _mm256_xor_si256(_mm256_xor_si256(x, y), z)
#define II(x, y, z) _mm256_xor_si256(y, _mm256_or_si256(x, _mm256_xor_si256(z, _mm256_set1_epi32(-1))))

__attribute__((target("avx2"))) static void md5_lanes_avx2(uint32_t state[4 * MD5_LANES], const uint8_t *const data[MD5_LANES], size_t blocks) {
  MD5_LANES_BODY;
}

#undef ROTL
#undef FF
#undef GG
#undef HH
#undef II

// AVX-512VL: one vpternlogd per round function (truth tables: F = x ? y : z → 0xCA; G = z ? x : y, the same
// select with z first; H = x ^ y ^ z → 0x96; I = y ^ (x | ~z) → 0x39), one vprold per rotate.
#define ROTL(x, s) _mm256_rol_epi32(x, s)
#define FF(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0xCA)
#define GG(x, y, z) _mm256_ternarylogic_epi32(z, x, y, 0xCA)
#define HH(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x96)
#define II(x, y, z) _mm256_ternarylogic_epi32(x, y, z, 0x39)

__attribute__((target("avx2,avx512f,avx512vl"))) static void md5_lanes_avx512vl(uint32_t state[4 * MD5_LANES], const uint8_t *const data[MD5_LANES], size_t blocks) {
  MD5_LANES_BODY;
}

void md5_lanes_compress(md5_lanes_kind kind, uint32_t state[4 * MD5_LANES], const uint8_t *const data[MD5_LANES], size_t blocks) {
  if (kind == MD5_LANES_AVX512VL) {
    md5_lanes_avx512vl(state, data, blocks);
  } else {
    md5_lanes_avx2(state, data, blocks);
  }
}
