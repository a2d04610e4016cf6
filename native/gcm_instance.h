// What native/gcm.c keeps per environment (main thread, each worker thread), shared with native/dare_open.c and
// native/sse_keys.c, and gcm.c's argument reader they use too.

#ifndef COFFER_GCM_INSTANCE_H
#define COFFER_GCM_INSTANCE_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define GCM_KEY_BYTES 32
#define GCM_IV_BYTES 12
#define GCM_TAG_BYTES 16

typedef struct {
  EVP_CIPHER *cipher;  // fetched once: an EVP_aes_256_gcm() would be fetched again on every init
  EVP_CIPHER_CTX *ctx; // holds a key only during a call, on the environment's own thread
  bool vaes;           // seal/open through vaes_gcm.c
  EVP_MD *md;          // SHA-256 for native/sse_keys.c's HMACs, fetched once
  EVP_MD_CTX *md_ctx;  // reused, reset after every HMAC
} gcm_instance;

// A Uint8Array argument of exactly `required` bytes (SIZE_MAX: any length); false with a TypeError or RangeError
// thrown that names it.
bool gcm_get_bytes(napi_env env, napi_value value, const char *name, size_t required, uint8_t **data, size_t *length);

// AES-256-GCM seal of `length` bytes of src into dst (dst is src or disjoint from it) and the tag, through
// vaes_gcm.c or OpenSSL as the instance chose; NULL, or the OpenSSL step that failed (its reason left queued).
const char *gcm_seal_into(const gcm_instance *instance, const uint8_t *key, const uint8_t *iv, const uint8_t *aad, size_t aad_bytes,
                          const uint8_t *src, uint8_t *dst, size_t length, uint8_t *tag);

#endif
