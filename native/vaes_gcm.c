/* AES-256-GCM with VAES/VPCLMULQDQ/AVX-512.  Compile WITHOUT -mavx512* / -mvaes:
 * every function using those instructions carries the TGT attribute below.
 *
 * GHASH representation: every 16-byte block is byte-reversed (vpshufb), so that
 * bit k of the 128-bit integer is the coefficient of x^(127-k).  A carry-less
 * product of two such values, read as a 256-bit reflected value, equals
 * a*b*x; hence the key powers are stored as H^i * x^-1 and the product is
 * reduced mod x^128+x^7+x^2+x+1 with two folds by 0xC2000000_00000000.
 */
#include "vaes_gcm.h"
#include <immintrin.h>
#include <cpuid.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmul,sse4.1")))
#define INL static inline __attribute__((always_inline)) TGT

/* ------------------------------------------------------------------ */
/* CPU feature detection (plain code, no AVX-512)                      */
/* ------------------------------------------------------------------ */
int vaes_gcm_available(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return 0;          /* OSXSAVE */
    if (!(c & (1u << 25))) return 0;          /* AES-NI (key expansion) */
    if (!(c & (1u << 1)))  return 0;          /* PCLMULQDQ */
    if (!(c & (1u << 19))) return 0;          /* SSE4.1 */
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    /* XMM(1), YMM(2), opmask(5), ZMM_Hi256(6), Hi16_ZMM(7) */
    if ((xlo & 0xE6u) != 0xE6u) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 16))) return 0;          /* AVX512F */
    if (!(b & (1u << 30))) return 0;          /* AVX512BW */
    if (!(b & (1u << 31))) return 0;          /* AVX512VL */
    if (!(c & (1u << 9)))  return 0;          /* VAES */
    if (!(c & (1u << 10))) return 0;          /* VPCLMULQDQ */
    return 1;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */
INL __m128i bswap_mask128(void)
{
    return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
INL __m512i bswap_mask512(void) { return _mm512_broadcast_i32x4(bswap_mask128()); }

INL __m128i gfpoly128(void) { return _mm_set_epi64x((long long)0xC200000000000000ULL, 1); }
INL __m512i gfpoly512(void) { return _mm512_broadcast_i32x4(gfpoly128()); }

INL __m512i xor3(__m512i a, __m512i b, __m512i c)
{
    return _mm512_ternarylogic_epi64(a, b, c, 0x96);
}

INL __mmask64 bytemask(size_t n)   /* n in 0..64+ */
{
    return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1);
}

/* 128-bit GHASH multiply: returns a*b*x (reflected), i.e. a*H when b = H*x^-1 */
INL __m128i gmul128(__m128i a, __m128i b)
{
    const __m128i P = gfpoly128();
    __m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
    __m128i mi = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01),
                               _mm_clmulepi64_si128(a, b, 0x10));
    __m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
    __m128i t = _mm_clmulepi64_si128(P, lo, 0x01);   /* lo.low * 0xC2.. */
    lo = _mm_shuffle_epi32(lo, 0x4e);
    mi = _mm_xor_si128(_mm_xor_si128(mi, lo), t);
    t = _mm_clmulepi64_si128(P, mi, 0x01);
    mi = _mm_shuffle_epi32(mi, 0x4e);
    return _mm_xor_si128(_mm_xor_si128(hi, mi), t);
}

/* accumulate unreduced 4-lane products a*h into lo/mi/hi */
#define GH_MUL_ACC(a, h, lo, mi, hi) do {                                   \
        __m512i a_ = (a), h_ = (h);                                         \
        lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(a_, h_, 0x00));  \
        mi = xor3(mi, _mm512_clmulepi64_epi128(a_, h_, 0x01),               \
                      _mm512_clmulepi64_epi128(a_, h_, 0x10));              \
        hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(a_, h_, 0x11));  \
    } while (0)

/* Karatsuba: lo += a.l*h.l, hi += a.h*h.h, mk += (a.l^a.h)*(h.l^h.h); hk = h ^ swap(h) */
#define GH_KMUL_ACC(a, h, hk, lo, mk, hi) do {                                          \
        __m512i a_ = (a);                                                                \
        lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(a_, h, 0x00));                \
        hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(a_, h, 0x11));                \
        mk = _mm512_xor_si512(mk, _mm512_clmulepi64_epi128(                              \
                 _mm512_xor_si512(a_, _mm512_shuffle_epi32(a_, (_MM_PERM_ENUM)0x4e)), hk, 0x00)); \
    } while (0)

/* reduce 4 lanes and XOR them together */
INL __m128i gh_reduce_hxor(__m512i lo, __m512i mi, __m512i hi)
{
    const __m512i P = gfpoly512();
    __m512i t = _mm512_clmulepi64_epi128(P, lo, 0x01);
    lo = _mm512_shuffle_epi32(lo, (_MM_PERM_ENUM)0x4e);
    mi = xor3(mi, lo, t);
    t = _mm512_clmulepi64_epi128(P, mi, 0x01);
    mi = _mm512_shuffle_epi32(mi, (_MM_PERM_ENUM)0x4e);
    hi = xor3(hi, mi, t);
    __m256i y = _mm256_xor_si256(_mm512_castsi512_si256(hi), _mm512_extracti64x4_epi64(hi, 1));
    return _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

/* GHASH n (1..16) reflected blocks held in c[0..3] (blocks >= n must be zero) */
INL __m128i ghash_n(__m128i acc, const __m512i c[4], unsigned n, const uint8_t *hpow)
{
    const uint8_t *hp = hpow + 16 * (16 - n);        /* H^n .. H^1 (+ zero pad) */
    __m512i lo = _mm512_setzero_si512(), mi = lo, hi = lo;
    unsigned nz = (n + 3) / 4;
    GH_MUL_ACC(_mm512_xor_si512(c[0], _mm512_zextsi128_si512(acc)),
               _mm512_loadu_si512(hp), lo, mi, hi);
    for (unsigned j = 1; j < nz; j++)
        GH_MUL_ACC(c[j], _mm512_loadu_si512(hp + 64 * j), lo, mi, hi);
    return gh_reduce_hxor(lo, mi, hi);
}

/* GHASH arbitrary bytes (zero padded to a block multiple) */
TGT static __m128i ghash_bytes(__m128i acc, const uint8_t *p, size_t len, const uint8_t *hpow)
{
    const __m512i bs = bswap_mask512();
    __m512i c[4];
    while (len >= 256) {
        for (int j = 0; j < 4; j++)
            c[j] = _mm512_shuffle_epi8(_mm512_loadu_si512(p + 64 * j), bs);
        acc = ghash_n(acc, c, 16, hpow);
        p += 256; len -= 256;
    }
    if (len) {
        unsigned n = (unsigned)((len + 15) / 16);
        for (size_t j = 0; j < 4; j++) {
            if (64 * j < len)
                c[j] = _mm512_shuffle_epi8(
                    _mm512_maskz_loadu_epi8(bytemask(len - 64 * j), p + 64 * j), bs);
            else
                c[j] = _mm512_setzero_si512();
        }
        acc = ghash_n(acc, c, n, hpow);
    }
    return acc;
}

/* ------------------------------------------------------------------ */
/* key setup                                                           */
/* ------------------------------------------------------------------ */
INL __m128i kexp_a(__m128i k, __m128i t)
{
    t = _mm_shuffle_epi32(t, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}
INL __m128i kexp_b(__m128i k, __m128i t)
{
    t = _mm_shuffle_epi32(t, 0xaa);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}

INL __m128i aes_enc1(const __m128i rk[15], __m128i x)
{
    x = _mm_xor_si128(x, rk[0]);
    for (int r = 1; r < 14; r++) x = _mm_aesenc_si128(x, rk[r]);
    return _mm_aesenclast_si128(x, rk[14]);
}

TGT void vaes_gcm_init(vaes_gcm_key *ctx, const uint8_t key[32])
{
    __m128i rk[15];
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
#define KX(i, rcon) do {                                                        \
        rk[2 * (i)] = kexp_a(rk[2 * (i) - 2], _mm_aeskeygenassist_si128(rk[2 * (i) - 1], rcon)); \
        if (2 * (i) + 1 < 15)                                                   \
            rk[2 * (i) + 1] = kexp_b(rk[2 * (i) - 1], _mm_aeskeygenassist_si128(rk[2 * (i)], 0)); \
    } while (0)
    KX(1, 0x01); KX(2, 0x02); KX(3, 0x04); KX(4, 0x08);
    KX(5, 0x10); KX(6, 0x20); KX(7, 0x40);
#undef KX
    for (int i = 0; i < 15; i++) _mm_storeu_si128((__m128i *)ctx->rk[i], rk[i]);

    /* H = E_K(0), reflected; K1 = H * x^-1 = (h << 1) ^ (msb ? 0xC2..01 : 0) */
    __m128i h = _mm_shuffle_epi8(aes_enc1(rk, _mm_setzero_si128()), bswap_mask128());
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(h), hi = (uint64_t)_mm_extract_epi64(h, 1);
    uint64_t m = 0 - (hi >> 63);
    uint64_t nhi = ((hi << 1) | (lo >> 63)) ^ (m & 0xC200000000000000ULL);
    uint64_t nlo = (lo << 1) ^ (m & 1);
    __m128i k1 = _mm_set_epi64x((long long)nhi, (long long)nlo);
    __m128i k = k1;
    _mm_storeu_si128((__m128i *)ctx->hpow[15], k);
    for (int i = 2; i <= 16; i++) {           /* K_i = H^i x^-1 = gmul(K_{i-1}, K_1) */
        k = gmul128(k, k1);
        _mm_storeu_si128((__m128i *)ctx->hpow[16 - i], k);
    }
    memset(ctx->hpow[16], 0, 4 * 16);
    /* wipe key material in registers/stack copies as far as practical */
    h = k = k1 = _mm_setzero_si128();
    lo = hi = m = nhi = nlo = 0;
    memset(rk, 0, sizeof rk);
    __asm__ volatile("" : : "r"(rk) : "memory");
}

void vaes_gcm_clear(vaes_gcm_key *ctx)
{
    volatile uint8_t *p = (volatile uint8_t *)ctx;
    for (size_t i = 0; i < sizeof *ctx; i++) p[i] = 0;
}

/* ------------------------------------------------------------------ */
/* bulk                                                                */
/* ------------------------------------------------------------------ */
#define AES_ROUND4(k) do {                           \
        x0 = _mm512_aesenc_epi128(x0, k);            \
        x1 = _mm512_aesenc_epi128(x1, k);            \
        x2 = _mm512_aesenc_epi128(x2, k);            \
        x3 = _mm512_aesenc_epi128(x3, k);            \
    } while (0)
#define AES_LAST4(k) do {                            \
        x0 = _mm512_aesenclast_epi128(x0, k);        \
        x1 = _mm512_aesenclast_epi128(x1, k);        \
        x2 = _mm512_aesenclast_epi128(x2, k);        \
        x3 = _mm512_aesenclast_epi128(x3, k);        \
    } while (0)
/* next 16 counter blocks, whitened with round key 0 */
#define AES_START4() do {                                                 \
        x0 = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, bs), rk[0]);       \
        ctr = _mm512_add_epi32(ctr, inc4);                                \
        x1 = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, bs), rk[0]);       \
        ctr = _mm512_add_epi32(ctr, inc4);                                \
        x2 = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, bs), rk[0]);       \
        ctr = _mm512_add_epi32(ctr, inc4);                                \
        x3 = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, bs), rk[0]);       \
        ctr = _mm512_add_epi32(ctr, inc4);                                \
    } while (0)

/* Core: enc=1 seal, enc=0 open (GHASH over ciphertext in both cases).
 * Returns the final GHASH accumulator (reflected, before the length block
 * has been folded in) and E_K(J0) through *ej0. */
INL __m128i gcm_crypt(const vaes_gcm_key *ctx, const uint8_t iv[12],
                      const uint8_t *aad, size_t aad_len,
                      const uint8_t *src, uint8_t *dst, size_t len,
                      const int enc, __m128i *ej0)
{
    const uint8_t *hpow = &ctx->hpow[0][0];
    const __m512i bs = bswap_mask512();
    __m512i rk[15];
    for (int i = 0; i < 15; i++)
        rk[i] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)ctx->rk[i]));

    uint8_t j0b[16];
    memcpy(j0b, iv, 12);
    j0b[12] = 0; j0b[13] = 0; j0b[14] = 0; j0b[15] = 1;
    __m128i j0 = _mm_loadu_si128((const __m128i *)j0b);
    {
        __m128i x = _mm_xor_si128(j0, _mm512_castsi512_si128(rk[0]));
        for (int r = 1; r < 14; r++) x = _mm_aesenc_si128(x, _mm512_castsi512_si128(rk[r]));
        *ej0 = _mm_aesenclast_si128(x, _mm512_castsi512_si128(rk[14]));
    }
    /* counters kept byte-reversed so that the 32-bit counter is dword 0 of each lane */
    __m512i ctr = _mm512_add_epi32(_mm512_broadcast_i32x4(_mm_shuffle_epi8(j0, bswap_mask128())),
                                   _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1));
    const __m512i inc4 = _mm512_broadcast_i32x4(_mm_set_epi32(0, 0, 0, 4));

    __m128i acc = ghash_bytes(_mm_setzero_si128(), aad, aad_len, hpow);

    const __m512i h0 = _mm512_loadu_si512(hpow), h1 = _mm512_loadu_si512(hpow + 64),
                  h2 = _mm512_loadu_si512(hpow + 128), h3 = _mm512_loadu_si512(hpow + 192);
    const __m512i hk0 = _mm512_xor_si512(h0, _mm512_shuffle_epi32(h0, (_MM_PERM_ENUM)0x4e)),
                  hk1 = _mm512_xor_si512(h1, _mm512_shuffle_epi32(h1, (_MM_PERM_ENUM)0x4e)),
                  hk2 = _mm512_xor_si512(h2, _mm512_shuffle_epi32(h2, (_MM_PERM_ENUM)0x4e)),
                  hk3 = _mm512_xor_si512(h3, _mm512_shuffle_epi32(h3, (_MM_PERM_ENUM)0x4e));
    __m512i x0, x1, x2, x3;
    size_t i = 0;

    if (enc) {
        if (len >= 256) {
            __m512i g0, g1, g2, g3;   /* reflected ciphertext awaiting GHASH */
            AES_START4();
            for (int r = 1; r < 14; r++) AES_ROUND4(rk[r]);
            AES_LAST4(rk[14]);
            x0 = _mm512_xor_si512(x0, _mm512_loadu_si512(src));
            x1 = _mm512_xor_si512(x1, _mm512_loadu_si512(src + 64));
            x2 = _mm512_xor_si512(x2, _mm512_loadu_si512(src + 128));
            x3 = _mm512_xor_si512(x3, _mm512_loadu_si512(src + 192));
            _mm512_storeu_si512(dst, x0);
            _mm512_storeu_si512(dst + 64, x1);
            _mm512_storeu_si512(dst + 128, x2);
            _mm512_storeu_si512(dst + 192, x3);
            g0 = _mm512_shuffle_epi8(x0, bs); g1 = _mm512_shuffle_epi8(x1, bs);
            g2 = _mm512_shuffle_epi8(x2, bs); g3 = _mm512_shuffle_epi8(x3, bs);
            i = 256;
            while (len - i >= 256) {
                __m512i lo, mi, hi;
                AES_START4();
                g0 = _mm512_xor_si512(g0, _mm512_zextsi128_si512(acc));
                AES_ROUND4(rk[1]);
                lo = mi = hi = _mm512_setzero_si512();
                GH_KMUL_ACC(g3, h3, hk3, lo, mi, hi);
                AES_ROUND4(rk[2]);
                AES_ROUND4(rk[3]);
                GH_KMUL_ACC(g2, h2, hk2, lo, mi, hi);
                AES_ROUND4(rk[4]);
                AES_ROUND4(rk[5]);
                GH_KMUL_ACC(g1, h1, hk1, lo, mi, hi);
                AES_ROUND4(rk[6]);
                AES_ROUND4(rk[7]);
                GH_KMUL_ACC(g0, h0, hk0, lo, mi, hi);
                AES_ROUND4(rk[8]);
                AES_ROUND4(rk[9]);
                acc = gh_reduce_hxor(lo, xor3(mi, lo, hi), hi);
                AES_ROUND4(rk[10]);
                AES_ROUND4(rk[11]);
                AES_ROUND4(rk[12]);
                AES_ROUND4(rk[13]);
                AES_LAST4(rk[14]);
                x0 = _mm512_xor_si512(x0, _mm512_loadu_si512(src + i));
                x1 = _mm512_xor_si512(x1, _mm512_loadu_si512(src + i + 64));
                x2 = _mm512_xor_si512(x2, _mm512_loadu_si512(src + i + 128));
                x3 = _mm512_xor_si512(x3, _mm512_loadu_si512(src + i + 192));
                _mm512_storeu_si512(dst + i, x0);
                _mm512_storeu_si512(dst + i + 64, x1);
                _mm512_storeu_si512(dst + i + 128, x2);
                _mm512_storeu_si512(dst + i + 192, x3);
                g0 = _mm512_shuffle_epi8(x0, bs); g1 = _mm512_shuffle_epi8(x1, bs);
                g2 = _mm512_shuffle_epi8(x2, bs); g3 = _mm512_shuffle_epi8(x3, bs);
                i += 256;
            }
            __m512i g[4] = { g0, g1, g2, g3 };
            acc = ghash_n(acc, g, 16, hpow);
        }
    } else {
        while (len - i >= 256) {
            __m512i lo, mi, hi, g0, g1, g2, g3;
            __m512i c0 = _mm512_loadu_si512(src + i), c1 = _mm512_loadu_si512(src + i + 64),
                    c2 = _mm512_loadu_si512(src + i + 128), c3 = _mm512_loadu_si512(src + i + 192);
            AES_START4();
            g0 = _mm512_xor_si512(_mm512_shuffle_epi8(c0, bs), _mm512_zextsi128_si512(acc));
            g1 = _mm512_shuffle_epi8(c1, bs);
            g2 = _mm512_shuffle_epi8(c2, bs);
            g3 = _mm512_shuffle_epi8(c3, bs);
            AES_ROUND4(rk[1]);
            lo = mi = hi = _mm512_setzero_si512();
            GH_KMUL_ACC(g3, h3, hk3, lo, mi, hi);
            AES_ROUND4(rk[2]);
            AES_ROUND4(rk[3]);
            GH_KMUL_ACC(g2, h2, hk2, lo, mi, hi);
            AES_ROUND4(rk[4]);
            AES_ROUND4(rk[5]);
            GH_KMUL_ACC(g1, h1, hk1, lo, mi, hi);
            AES_ROUND4(rk[6]);
            AES_ROUND4(rk[7]);
            GH_KMUL_ACC(g0, h0, hk0, lo, mi, hi);
            AES_ROUND4(rk[8]);
            AES_ROUND4(rk[9]);
            acc = gh_reduce_hxor(lo, xor3(mi, lo, hi), hi);
            AES_ROUND4(rk[10]);
            AES_ROUND4(rk[11]);
            AES_ROUND4(rk[12]);
            AES_ROUND4(rk[13]);
            AES_LAST4(rk[14]);
            _mm512_storeu_si512(dst + i, _mm512_xor_si512(x0, c0));
            _mm512_storeu_si512(dst + i + 64, _mm512_xor_si512(x1, c1));
            _mm512_storeu_si512(dst + i + 128, _mm512_xor_si512(x2, c2));
            _mm512_storeu_si512(dst + i + 192, _mm512_xor_si512(x3, c3));
            i += 256;
        }
    }

    /* tail: 1..255 bytes, up to 16 blocks, masked loads/stores */
    size_t r = len - i;
    if (r) {
        AES_START4();
        for (int k = 1; k < 14; k++) AES_ROUND4(rk[k]);
        AES_LAST4(rk[14]);
        __m512i ks[4] = { x0, x1, x2, x3 }, g[4];
        for (size_t j = 0; j < 4; j++) {
            if (64 * j < r) {
                __mmask64 m = bytemask(r - 64 * j);
                __m512i in = _mm512_maskz_loadu_epi8(m, src + i + 64 * j);
                __m512i out = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(in, ks[j]));
                _mm512_mask_storeu_epi8(dst + i + 64 * j, m, out);
                g[j] = _mm512_shuffle_epi8(enc ? out : in, bs);
            } else {
                g[j] = _mm512_setzero_si512();
            }
        }
        acc = ghash_n(acc, g, (unsigned)((r + 15) / 16), hpow);
    }

    /* length block: [len(A)]_64 || [len(C)]_64 in bits, reflected */
    acc = _mm_xor_si128(acc, _mm_set_epi64x((long long)((uint64_t)aad_len << 3),
                                            (long long)((uint64_t)len << 3)));
    acc = gmul128(acc, _mm_loadu_si128((const __m128i *)ctx->hpow[15]));
    return acc;
}

TGT void vaes_gcm_seal(const vaes_gcm_key *ctx, const uint8_t iv[12],
                       const uint8_t *aad, size_t aad_len,
                       const uint8_t *src, uint8_t *dst, size_t len,
                       uint8_t tag[16])
{
    __m128i ej0;
    __m128i s = gcm_crypt(ctx, iv, aad, aad_len, src, dst, len, 1, &ej0);
    s = _mm_xor_si128(_mm_shuffle_epi8(s, bswap_mask128()), ej0);
    _mm_storeu_si128((__m128i *)tag, s);
}

TGT int vaes_gcm_open(const vaes_gcm_key *ctx, const uint8_t iv[12],
                      const uint8_t *aad, size_t aad_len,
                      const uint8_t *src, uint8_t *dst, size_t len,
                      const uint8_t tag[16])
{
    __m128i ej0;
    __m128i s = gcm_crypt(ctx, iv, aad, aad_len, src, dst, len, 0, &ej0);
    s = _mm_xor_si128(_mm_shuffle_epi8(s, bswap_mask128()), ej0);
    __m128i d = _mm_xor_si128(s, _mm_loadu_si128((const __m128i *)tag));
    int ok = _mm_testz_si128(d, d);            /* branch-free 128-bit compare */
    if (!ok && len) {
        memset(dst, 0, len);
        __asm__ volatile("" : : "r"(dst) : "memory");
    }
    return ok;
}
