// coffer_hash: one-call SHA-256 and HMAC-SHA256 of a few short parts, for the per-request hashing of SigV4
// (api/auth) and the per-object key derivations of SSE (engine/crypto/keys.ts, the KMS caches) through
// engine/crypto/sha256.ts.
//
// node:crypto's createHash/createHmac build a JS object, a C++ wrapper and a fresh EVP context, and fetch
// the digest from OpenSSL's provider on every call: ~1.5 µs for a SHA-256 and ~3 µs for an HMAC of a few
// dozen bytes, of which the SHA-256 compressions (with the CPU's SHA extensions) are a tenth. Here the digest
// is fetched once and one EVP_MD_CTX is reused per addon instance, and the result goes into the caller's
// 32 bytes. OpenSSL is Node's own (see native/gcm.c), resolved at load time.
//
//   sha256(out, ...parts)             SHA-256 of the concatenated parts
//   hmacSha256(out, key, ...parts)    HMAC-SHA256 (RFC 2104) of the concatenated parts under key
//
// out is a Uint8Array of at least 32 bytes (the digest goes into its first 32); key and every part is a
// Uint8Array or a string (hashed as UTF-8, as node:crypto hashes strings). At most 8 parts. Wrong types throw
// TypeError, a short out RangeError, an OpenSSL failure Error. The HMAC's padded key blocks live on the stack
// and are cleared before returning; the context is reset after every call.
//
// Context-aware (NAPI_MODULE_INIT): each environment (main thread, Piscina workers) has its own context.

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
#include <openssl/opensslv.h>

#include "hmac_sha256.h"
#include "napi_errors.h"

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#error "coffer_hash needs the OpenSSL 3 headers of the Node it is built for"
#endif

#define DIGEST_BYTES 32
#define PARTS_MAX 8
// Strings up to this many UTF-8 bytes are copied onto the stack; longer ones into one malloc'd buffer.
#define STACK_STRING_BYTES 2048

typedef struct {
  EVP_MD *md;      // fetched once: EVP_sha256() would be fetched again on every init
  EVP_MD_CTX *ctx; // reused, reset after each call
} hash_instance;

typedef struct {
  const uint8_t *data;
  size_t length;
  uint8_t *owned; // malloc'd copy of a long string, freed by the caller
} part_view;

static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  hash_instance *instance = data;
  if (instance == NULL) return;
  EVP_MD_CTX_free(instance->ctx);
  EVP_MD_free(instance->md);
  OPENSSL_free(instance);
}

// An OpenSSL call failed: throw with its reason (native/napi_errors.h).
static void throw_openssl(napi_env env, const char *what) {
  throw_openssl_failure(env, "ERR_COFFER_HASH_OPENSSL", "coffer_hash", what);
}

// A Uint8Array or a string (UTF-8 into `scratch` when it fits, else a malloc'd copy in view->owned).
static bool get_part(napi_env env, napi_value value, const char *name, char *scratch, size_t scratch_bytes, part_view *view) {
  view->owned = NULL;
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_string) {
    size_t length = 0;
    if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return false;
    char *target = scratch;
    if (length + 1 > scratch_bytes) {
      view->owned = malloc(length + 1);
      if (view->owned == NULL) {
        throw_error(env, PLAIN_ERROR, "ERR_COFFER_HASH_MEMORY", "coffer_hash: out of memory");
        return false;
      }
      target = (char *)view->owned;
    }
    size_t copied = 0;
    if (napi_get_value_string_utf8(env, value, target, length + 1, &copied) != napi_ok || copied != length) {
      free(view->owned);
      view->owned = NULL;
      throw_error(env, PLAIN_ERROR, "ERR_COFFER_HASH_STRING", "coffer_hash: a string changed length while being read");
      return false;
    }
    view->data = (const uint8_t *)target;
    view->length = length;
    return true;
  }
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok) return false;
  napi_typedarray_type array_type = napi_int8_array;
  size_t length = 0;
  void *data = NULL;
  if (is_typed_array && napi_get_typedarray_info(env, value, &array_type, &length, &data, NULL, NULL) != napi_ok) return false;
  if (!is_typed_array || array_type != napi_uint8_array || (length > 0 && data == NULL)) {
    char message[128];
    snprintf(message, sizeof message, "%s must be a string, a Uint8Array or a Buffer", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  view->data = data;
  view->length = length;
  return true;
}

static bool get_out(napi_env env, napi_value value, uint8_t **out) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok) return false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void *data = NULL;
  if (is_typed_array && napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return false;
  if (!is_typed_array || type != napi_uint8_array) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "out must be a Uint8Array or Buffer");
    return false;
  }
  if (length < DIGEST_BYTES || data == NULL) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "out must hold at least 32 bytes");
    return false;
  }
  *out = data;
  return true;
}

// Reads (out, [key,] ...parts), runs the digest, frees what get_part allocated.
static napi_value run(napi_env env, napi_callback_info info, bool keyed) {
  size_t argc = PARTS_MAX + 2;
  napi_value argv[PARTS_MAX + 2];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) return NULL;
  size_t fixed = keyed ? 2 : 1;
  if (argc < fixed) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS", keyed ? "expected (out, key, ...parts)" : "expected (out, ...parts)");
    return NULL;
  }
  if (argc > PARTS_MAX + fixed) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "at most 8 parts");
    return NULL;
  }
  hash_instance *instance = data;
  if (instance == NULL || instance->ctx == NULL || instance->md == NULL) {
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_HASH_STATE", "coffer_hash: addon instance not initialised");
    return NULL;
  }
  uint8_t *out = NULL;
  if (!get_out(env, argv[0], &out)) return NULL;

  char scratch[STACK_STRING_BYTES];
  size_t scratch_used = 0;
  part_view key = {NULL, 0, NULL};
  part_view parts[PARTS_MAX];
  size_t count = 0;
  bool ok = true;
  for (size_t i = 1; i < argc && ok; i++) {
    part_view *view = (keyed && i == 1) ? &key : &parts[count];
    ok = get_part(env, argv[i], (keyed && i == 1) ? "key" : "part", scratch + scratch_used, sizeof scratch - scratch_used, view);
    if (ok && view->owned == NULL && view->data == (const uint8_t *)(scratch + scratch_used)) scratch_used += view->length + 1;
    if (ok && view != &key) count++;
  }

  uint8_t digest[DIGEST_BYTES];
  hmac_part views[PARTS_MAX];
  for (size_t i = 0; i < count; i++) views[i] = (hmac_part){parts[i].data, parts[i].length};
  if (ok && !keyed) {
    ok = sha256_parts(instance->ctx, instance->md, NULL, 0, views, count, digest);
    if (!ok) throw_openssl(env, "SHA-256");
  } else if (ok) {
    ok = hmac_sha256(instance->ctx, instance->md, key.data, key.length, views, count, digest);
    if (!ok) throw_openssl(env, "HMAC-SHA256");
  }
  EVP_MD_CTX_reset(instance->ctx);
  if (ok) memcpy(out, digest, DIGEST_BYTES);
  OPENSSL_cleanse(digest, sizeof digest);
  if (scratch_used > 0) OPENSSL_cleanse(scratch, scratch_used); // a string key may be a secret
  if (key.owned != NULL) {
    OPENSSL_cleanse(key.owned, key.length);
    free(key.owned);
  }
  for (size_t i = 0; i < count; i++) free(parts[i].owned);
  return NULL;
}

static napi_value sha256_export(napi_env env, napi_callback_info info) {
  return run(env, info, false);
}

static napi_value hmac_sha256_export(napi_env env, napi_callback_info info) {
  return run(env, info, true);
}

NAPI_MODULE_INIT() {
  hash_instance *instance = OPENSSL_zalloc(sizeof *instance);
  if (instance == NULL) {
    napi_throw_error(env, "ERR_COFFER_HASH_INIT", "coffer_hash: out of memory");
    return NULL;
  }
  instance->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  instance->ctx = EVP_MD_CTX_new();
  if (instance->md == NULL || instance->ctx == NULL) {
    instance_free(env, instance, NULL);
    throw_openssl(env, "fetching SHA-256");
    return NULL;
  }
  if (napi_set_instance_data(env, instance, instance_free, NULL) != napi_ok) {
    instance_free(env, instance, NULL);
    return NULL;
  }
  napi_property_descriptor properties[] = {
      {"sha256", NULL, sha256_export, NULL, NULL, NULL, napi_enumerable, instance},
      {"hmacSha256", NULL, hmac_sha256_export, NULL, NULL, NULL, napi_enumerable, instance},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
