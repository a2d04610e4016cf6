/* AES-256-GCM (96-bit IV) using VAES + VPCLMULQDQ + AVX-512 (F/BW/VL), for native/gcm.c on CPUs that have
 * them (Node's OpenSSL 3.0 has no such code path: ~4.5 GB/s here, against ~11 GB/s for this one).
 * Byte-identical to OpenSSL's EVP AES-256-GCM; the differential tests, known-answer vector, forgery and
 * page-guard tests it was developed against are summarised in docs/encryption.md, and test/native-gcm.test.ts
 * checks it against node:crypto and @noble/ciphers wherever the addon runs on such a CPU.
 * Call vaes_gcm_available() first; the other functions must not be called on CPUs/OSes where it returns 0.
 * No global state. Messages must stay within GCM's limit (2^36 - 32 bytes): not checked here. */
#ifndef VAES_GCM_H
#define VAES_GCM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    /* hpow[i] = H^(16-i) * x^-1 in byte-reflected form, i = 0..15;
     * hpow[16..19] are zero padding (read by the tail GHASH). */
    _Alignas(64) uint8_t hpow[20][16];
    _Alignas(16) uint8_t rk[15][16];   /* AES-256 encryption round keys */
} vaes_gcm_key;

int  vaes_gcm_available(void);
void vaes_gcm_init(vaes_gcm_key *ctx, const uint8_t key[32]);
void vaes_gcm_seal(const vaes_gcm_key *ctx, const uint8_t iv[12],
                   const uint8_t *aad, size_t aad_len,
                   const uint8_t *src, uint8_t *dst, size_t len,
                   uint8_t tag[16]);
/* Returns 1 if authentic (dst = plaintext), else 0 and dst[0..len) zeroed. */
int  vaes_gcm_open(const vaes_gcm_key *ctx, const uint8_t iv[12],
                   const uint8_t *aad, size_t aad_len,
                   const uint8_t *src, uint8_t *dst, size_t len,
                   const uint8_t tag[16]);
/* Wipe a key context. */
void vaes_gcm_clear(vaes_gcm_key *ctx);

#ifdef __cplusplus
}
#endif
#endif
