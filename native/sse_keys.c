// A new object's key material in one call each, for the SSE envelope every encrypted PUT makes (api/sse.ts):
// the same bytes as engine/crypto/keys.ts and engine/kms/builtin.ts compute in JS, where each HMAC, each seal,
// and the Buffers between them cost a native call and an allocation (~3 µs of HMACs and seals per envelope in a
// tight loop, twice that on a busy event loop). Exported by native/gcm.c with its gcm_instance.
//
//   newSealedObjectKey(externalKey, random, iv, nonce, kekTail, objectKeyOut, sealedKeyOut)
//     objectKeyOut ← OEK = HMAC-SHA256(externalKey, "object-encryption-key generation" ‖ random)
//     sealedKeyOut ← one final DARE 2.0 package of the OEK under KEK = HMAC-SHA256(externalKey, iv ‖ kekTail),
//                    its header nonce `nonce` (the final flag set), sequence 0
//     externalKey, random, iv and objectKeyOut are 32 bytes, nonce 12, sealedKeyOut 64; kekTail is the rest of
//     the KEK input as a string (UTF-8) or bytes: domain ‖ "DAREv2-HMAC-SHA256" ‖ path.Join(bucket, object).
//     The KEK stays on the stack and is cleansed.
//   kesSeal(masterKey, aad, plaintext, out)
//     The KES/MinIO built-in KMS's AES256 binary ciphertext (engine/kms/builtin.ts): out = AES-256-GCM(plaintext)
//     ‖ tag ‖ iv ‖ nonce, under HMAC-SHA256(masterKey, iv), with the iv (16 bytes) and nonce (12) the caller put
//     at out's end. out is plaintext.length + 44 bytes; masterKey 32.
//
// Wrong types throw TypeError, wrong lengths or overlaps RangeError, an OpenSSL failure Error (and the outputs
// are cleansed: no half-made key is handed out). AES-256-GCM runs through vaes_gcm.c when gcm.c chose it.

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "gcm_instance.h"
#include "hmac_sha256.h"
#include "napi_errors.h"
#include "sse_keys.h"

#define KEY_BYTES 32
#define DARE_HEADER_BYTES 16
#define DARE_NONCE_BYTES 12
#define SEALED_KEY_BYTES (DARE_HEADER_BYTES + KEY_BYTES + GCM_TAG_BYTES)
#define DARE_VERSION_20 0x20
#define DARE_CIPHER_AES_GCM 0x00
#define DARE_FINAL_FLAG 0x80
#define KES_IV_BYTES 16
#define KES_OVERHEAD_BYTES (GCM_TAG_BYTES + KES_IV_BYTES + GCM_IV_BYTES)
// kekTail strings up to this many UTF-8 bytes are read onto the stack (bucket names are ≤ 63, object names ≤ 1,024).
#define STACK_TAIL_BYTES 2048

static const char object_key_label[] = "object-encryption-key generation";

static void throw_openssl(napi_env env, const char *what) {
  throw_openssl_failure(env, "ERR_COFFER_GCM_OPENSSL", "coffer_gcm", what);
}

static bool overlaps(const uint8_t *a, size_t a_bytes, const uint8_t *b, size_t b_bytes) {
  uintptr_t a_start = (uintptr_t)a, b_start = (uintptr_t)b;
  return a_bytes > 0 && b_bytes > 0 && a_start < b_start + b_bytes && b_start < a_start + a_bytes;
}

// kekTail: a string (UTF-8 onto `scratch` when it fits, else into *owned) or a Uint8Array.
static bool get_tail(napi_env env, napi_value value, char *scratch, size_t scratch_bytes, hmac_part *tail, char **owned) {
  *owned = NULL;
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type != napi_string) {
    uint8_t *data = NULL;
    size_t length = 0;
    if (!gcm_get_bytes(env, value, "kekTail", SIZE_MAX, &data, &length)) return false;
    *tail = (hmac_part){data, length};
    return true;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return false;
  char *target = scratch;
  if (length + 1 > scratch_bytes) {
    *owned = malloc(length + 1);
    if (*owned == NULL) {
      throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_MEMORY", "coffer_gcm: out of memory");
      return false;
    }
    target = *owned;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, value, target, length + 1, &copied) != napi_ok || copied != length) {
    free(*owned);
    *owned = NULL;
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_STRING", "coffer_gcm: kekTail changed length while being read");
    return false;
  }
  *tail = (hmac_part){(const uint8_t *)target, length};
  return true;
}

// The call's first `count` arguments into argv, and the addon instance; NULL with an error thrown.
static gcm_instance *arguments(napi_env env, napi_callback_info info, size_t count, napi_value *argv, const char *usage) {
  size_t argc = count;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) return NULL;
  if (argc < count) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS", usage);
    return NULL;
  }
  gcm_instance *instance = data;
  if (instance == NULL || instance->ctx == NULL || instance->cipher == NULL || instance->md == NULL || instance->md_ctx == NULL) {
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_STATE", "coffer_gcm: addon instance not initialised");
    return NULL;
  }
  return instance;
}

napi_value sse_new_sealed_object_key(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  gcm_instance *instance = arguments(env, info, 7, argv, "expected (externalKey, random, iv, nonce, kekTail, objectKeyOut, sealedKeyOut)");
  if (instance == NULL) return NULL;
  uint8_t *external_key = NULL, *random = NULL, *iv = NULL, *nonce = NULL, *object_key = NULL, *sealed = NULL;
  size_t length = 0;
  if (!gcm_get_bytes(env, argv[0], "externalKey", KEY_BYTES, &external_key, &length) ||
      !gcm_get_bytes(env, argv[1], "random", KEY_BYTES, &random, &length) ||
      !gcm_get_bytes(env, argv[2], "iv", KEY_BYTES, &iv, &length) ||
      !gcm_get_bytes(env, argv[3], "nonce", DARE_NONCE_BYTES, &nonce, &length) ||
      !gcm_get_bytes(env, argv[5], "objectKeyOut", KEY_BYTES, &object_key, &length) ||
      !gcm_get_bytes(env, argv[6], "sealedKeyOut", SEALED_KEY_BYTES, &sealed, &length)) {
    return NULL;
  }
  if (overlaps(object_key, KEY_BYTES, sealed, SEALED_KEY_BYTES)) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "objectKeyOut and sealedKeyOut must not overlap");
    return NULL;
  }
  char scratch[STACK_TAIL_BYTES];
  char *owned = NULL;
  hmac_part tail;
  if (!get_tail(env, argv[4], scratch, sizeof scratch, &tail, &owned)) return NULL;

  uint8_t oek[KEY_BYTES], kek[KEY_BYTES];
  const char *failed = NULL;
  hmac_part generation[] = {{(const uint8_t *)object_key_label, sizeof object_key_label - 1}, {random, KEY_BYTES}};
  hmac_part derivation[] = {{iv, KEY_BYTES}, tail};
  if (!hmac_sha256(instance->md_ctx, instance->md, external_key, KEY_BYTES, generation, 2, oek)) failed = "HMAC-SHA256 (object key)";
  if (failed == NULL && !hmac_sha256(instance->md_ctx, instance->md, external_key, KEY_BYTES, derivation, 2, kek)) failed = "HMAC-SHA256 (KEK)";
  if (failed == NULL) {
    // The package: version, cipher, payload size - 1 (uint16 LE), the nonce with the final flag; the AEAD nonce
    // is those 12 bytes with the sequence (0) XORed into the last four, and the first 4 header bytes its AAD.
    uint8_t package[SEALED_KEY_BYTES];
    package[0] = DARE_VERSION_20;
    package[1] = DARE_CIPHER_AES_GCM;
    package[2] = (uint8_t)(KEY_BYTES - 1);
    package[3] = 0;
    memcpy(package + 4, nonce, DARE_NONCE_BYTES);
    package[4] |= DARE_FINAL_FLAG;
    failed = gcm_seal_into(instance, kek, package + 4, package, 4, oek, package + DARE_HEADER_BYTES, KEY_BYTES, package + DARE_HEADER_BYTES + KEY_BYTES);
    if (failed == NULL) {
      memcpy(sealed, package, SEALED_KEY_BYTES);
      memcpy(object_key, oek, KEY_BYTES);
    }
    OPENSSL_cleanse(package, sizeof package);
  }
  OPENSSL_cleanse(oek, sizeof oek);
  OPENSSL_cleanse(kek, sizeof kek);
  if (owned != NULL) free(owned);
  if (failed != NULL) {
    OPENSSL_cleanse(object_key, KEY_BYTES);
    OPENSSL_cleanse(sealed, SEALED_KEY_BYTES);
    throw_openssl(env, failed);
  }
  return NULL; // undefined
}

napi_value sse_kes_seal(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  gcm_instance *instance = arguments(env, info, 4, argv, "expected (masterKey, aad, plaintext, out)");
  if (instance == NULL) return NULL;
  uint8_t *master_key = NULL, *aad = NULL, *plaintext = NULL, *out = NULL;
  size_t length = 0, aad_bytes = 0, plaintext_bytes = 0;
  if (!gcm_get_bytes(env, argv[0], "masterKey", KEY_BYTES, &master_key, &length) ||
      !gcm_get_bytes(env, argv[1], "aad", SIZE_MAX, &aad, &aad_bytes) ||
      !gcm_get_bytes(env, argv[2], "plaintext", SIZE_MAX, &plaintext, &plaintext_bytes) ||
      !gcm_get_bytes(env, argv[3], "out", plaintext_bytes + KES_OVERHEAD_BYTES, &out, &length)) {
    return NULL;
  }
  if (overlaps(out, plaintext_bytes + GCM_TAG_BYTES, plaintext, plaintext_bytes) || overlaps(out, plaintext_bytes + GCM_TAG_BYTES, aad, aad_bytes)) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "out must not overlap plaintext or aad");
    return NULL;
  }
  const uint8_t *iv = out + plaintext_bytes + GCM_TAG_BYTES;
  const uint8_t *nonce = iv + KES_IV_BYTES;
  uint8_t key[KEY_BYTES];
  hmac_part derivation = {iv, KES_IV_BYTES};
  const char *failed = NULL;
  if (!hmac_sha256(instance->md_ctx, instance->md, master_key, KEY_BYTES, &derivation, 1, key)) {
    failed = "HMAC-SHA256 (sealing key)";
  } else {
    failed = gcm_seal_into(instance, key, nonce, aad, aad_bytes, plaintext, out, plaintext_bytes, out + plaintext_bytes);
  }
  OPENSSL_cleanse(key, sizeof key);
  if (failed != NULL) {
    OPENSSL_cleanse(out, plaintext_bytes + GCM_TAG_BYTES);
    throw_openssl(env, failed);
  }
  return NULL; // undefined
}
