// HMAC-SHA256 (RFC 2104) of a few concatenated parts, with a digest fetched once and a context the caller owns:
// shared by native/hash.c (SigV4, key derivations) and native/sse_keys.c (a new object's keys in one call).
// The padded key block lives on the stack and is cleansed before returning; the context is left reset.

#ifndef COFFER_HMAC_SHA256_H
#define COFFER_HMAC_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HMAC_SHA256_BYTES 32
#define HMAC_SHA256_BLOCK_BYTES 64

typedef struct {
  const uint8_t *data;
  size_t length;
} hmac_part;

// SHA-256 of `prefix` (may be NULL) followed by every part.
static inline bool sha256_parts(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *prefix, size_t prefix_bytes,
                                const hmac_part *parts, size_t count, uint8_t digest[HMAC_SHA256_BYTES]) {
  if (EVP_DigestInit_ex2(ctx, md, NULL) != 1) return false;
  if (prefix != NULL && EVP_DigestUpdate(ctx, prefix, prefix_bytes) != 1) return false;
  for (size_t i = 0; i < count; i++) {
    if (parts[i].length > 0 && EVP_DigestUpdate(ctx, parts[i].data, parts[i].length) != 1) return false;
  }
  unsigned int written = 0;
  return EVP_DigestFinal_ex(ctx, digest, &written) == 1 && written == HMAC_SHA256_BYTES;
}

// HMAC-SHA256 of the concatenated parts under `key` into `out` (which may alias nothing it reads). False on an
// OpenSSL failure (its reason is left queued for the caller), and `out` is then not written.
static inline bool hmac_sha256(EVP_MD_CTX *ctx, const EVP_MD *md, const uint8_t *key, size_t key_bytes, const hmac_part *parts,
                               size_t count, uint8_t out[HMAC_SHA256_BYTES]) {
  // K0 = key (hashed first if longer than a block), zero-padded to the block size.
  uint8_t pad[HMAC_SHA256_BLOCK_BYTES];
  uint8_t digest[HMAC_SHA256_BYTES];
  memset(pad, 0, sizeof pad);
  bool ok = true;
  if (key_bytes > HMAC_SHA256_BLOCK_BYTES) {
    hmac_part whole = {key, key_bytes};
    ok = sha256_parts(ctx, md, NULL, 0, &whole, 1, pad);
  } else if (key_bytes > 0) {
    memcpy(pad, key, key_bytes);
  }
  if (ok) {
    for (size_t i = 0; i < sizeof pad; i++) pad[i] ^= 0x36;
    ok = sha256_parts(ctx, md, pad, sizeof pad, parts, count, digest);
  }
  if (ok) {
    for (size_t i = 0; i < sizeof pad; i++) pad[i] ^= 0x36 ^ 0x5c;
    hmac_part inner = {digest, sizeof digest};
    ok = sha256_parts(ctx, md, pad, sizeof pad, &inner, 1, digest);
  }
  EVP_MD_CTX_reset(ctx);
  if (ok) memcpy(out, digest, HMAC_SHA256_BYTES);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(digest, sizeof digest);
  return ok;
}

#endif
