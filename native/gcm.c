// coffer_gcm: AES-256-GCM seal/open straight into the caller's memory, for DARE 2.0 packages
// (workers/dare.ts through workers/native-gcm.ts). node:crypto's Cipher.update() allocates a fresh Buffer for
// every 64 KiB package that DARE then copies into its output; here the ciphertext or plaintext goes where the
// caller wants it, and the cipher is fetched from OpenSSL's default provider once per addon instance instead
// of on every package.
//
// OpenSSL is Node's own: the node executable exports the OpenSSL 3 symbols, and the headers ship with Node
// (include/node/openssl), so nothing links libcrypto. The module is linked with -z now (binding.gyp): if the
// running node lacks a symbol, loading fails (and Coffer falls back to node:crypto) instead of the process
// dying at the first call.
//
//   seal(key, iv, aad, src, dst, tag)          encrypt src into dst, write the 16-byte tag into tag
//   open(key, iv, aad, src, dst, tag) → bool   decrypt src into dst; false (and dst zeroed) if the tag is wrong
//   implementation                             "vaes-avx512" or "openssl": which code seals and opens
//   openBlock(...)                             read and open a block of DARE packages on libuv's thread pool
//                                              (native/dare_open.c)
//   newSealedObjectKey(...), kesSeal(...)      a new object's key and sealed key, a KMS data key's seal, one
//                                              call each (native/sse_keys.c)
//
// On CPUs with VAES, VPCLMULQDQ and AVX-512 F/BW/VL (and an OS that saves their registers) both go through
// native/vaes_gcm.c, 2.4x faster than Node's OpenSSL 3.0, which has no AVX-512 AES-GCM path; same bytes.
// COFFER_NATIVE_GCM_VAES=off in the environment keeps OpenSSL.
//
// Every argument is a Uint8Array (Buffers are) of any offset, over an ArrayBuffer, a SharedArrayBuffer or a
// WebAssembly.Memory. key is 32 bytes, iv 12, tag 16; src and dst have the same length; dst is either
// exactly src (in place) or disjoint from it, and tag is disjoint from dst. Wrong types throw TypeError,
// wrong lengths or overlaps RangeError, an OpenSSL failure Error.
//
// Context-aware (NAPI_MODULE_INIT): each environment (main thread, every worker thread) gets its own cipher
// and EVP_CIPHER_CTX in its instance data, so the Piscina workers can load it concurrently. The context is
// reset after every call, which frees the key schedule (OpenSSL clears it before freeing), so no key
// material outlives a call.

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "dare_open.h"
#include "gcm_instance.h"
#include "napi_errors.h"
#include "sse_keys.h"
#include "vaes_gcm.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#error "coffer_gcm needs the OpenSSL 3 headers of the Node it is built for"
#endif

#define KEY_BYTES GCM_KEY_BYTES
#define IV_BYTES GCM_IV_BYTES
#define TAG_BYTES GCM_TAG_BYTES
// EVP_CipherUpdate takes an int length: longer inputs go through in steps of this many bytes (a multiple
// of the AES block, although GCM's streaming does not need that).
#define STEP_BYTES (1 << 30)


// GCM's limit on one message (2^36 - 32 bytes). vaes_gcm.c does not check it; OpenSSL refuses beyond it.
#define VAES_MESSAGE_BYTES_MAX ((((uint64_t)1) << 36) - 32)

typedef struct {
  uint8_t *data;
  size_t length;
} byte_view;

static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  gcm_instance *instance = data;
  if (instance == NULL) return;
  EVP_CIPHER_CTX_free(instance->ctx);
  EVP_CIPHER_free(instance->cipher);
  EVP_MD_CTX_free(instance->md_ctx);
  EVP_MD_free(instance->md);
  OPENSSL_free(instance);
}

// An OpenSSL call returned failure: throw with OpenSSL's reason (native/napi_errors.h).
static void throw_openssl(napi_env env, const char *what) {
  throw_openssl_failure(env, "ERR_COFFER_GCM_OPENSSL", "coffer_gcm", what);
}

// A Uint8Array argument (`name` is for the messages); `required` is its exact length, or SIZE_MAX for any.
static bool get_bytes(napi_env env, napi_value value, const char *name, size_t required, byte_view *out) {
  char message[128];
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok) return false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void *data = NULL;
  if (is_typed_array && napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL) != napi_ok) return false;
  if (!is_typed_array || type != napi_uint8_array) {
    snprintf(message, sizeof message, "%s must be a Uint8Array or Buffer", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  if (required != SIZE_MAX && length != required) {
    snprintf(message, sizeof message, "%s must be %zu bytes, got %zu", name, required, length);
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  if (length > 0 && data == NULL) {
    snprintf(message, sizeof message, "%s has no backing memory", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  out->data = data;
  out->length = length;
  return true;
}

bool gcm_get_bytes(napi_env env, napi_value value, const char *name, size_t required, uint8_t **data, size_t *length) {
  byte_view view;
  if (!get_bytes(env, value, name, required, &view)) return false;
  *data = view.data;
  *length = view.length;
  return true;
}

static bool overlap(const byte_view *a, const byte_view *b) {
  if (a->length == 0 || b->length == 0) return false;
  uintptr_t a_start = (uintptr_t)a->data, b_start = (uintptr_t)b->data;
  return a_start < b_start + b->length && b_start < a_start + a->length;
}

typedef struct {
  byte_view key, iv, aad, src, dst, tag;
} gcm_arguments;

static gcm_instance *get_arguments(napi_env env, napi_callback_info info, gcm_arguments *args) {
  size_t argc = 6;
  napi_value argv[6];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) return NULL;
  if (argc < 6) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS", "expected (key, iv, aad, src, dst, tag)");
    return NULL;
  }
  if (!get_bytes(env, argv[0], "key", KEY_BYTES, &args->key) ||
      !get_bytes(env, argv[1], "iv", IV_BYTES, &args->iv) ||
      !get_bytes(env, argv[2], "aad", SIZE_MAX, &args->aad) ||
      !get_bytes(env, argv[3], "src", SIZE_MAX, &args->src) ||
      !get_bytes(env, argv[4], "dst", SIZE_MAX, &args->dst) ||
      !get_bytes(env, argv[5], "tag", TAG_BYTES, &args->tag)) {
    return NULL;
  }
  if (args->src.length != args->dst.length) {
    char message[128];
    snprintf(message, sizeof message, "dst must be as long as src (%zu bytes), got %zu", args->src.length, args->dst.length);
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", message);
    return NULL;
  }
  if (args->src.data != args->dst.data && overlap(&args->src, &args->dst)) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "dst must be exactly src (in place) or not overlap it");
    return NULL;
  }
  if (overlap(&args->tag, &args->dst)) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "tag must not overlap dst");
    return NULL;
  }
  gcm_instance *instance = data;
  if (instance == NULL || instance->ctx == NULL || instance->cipher == NULL) {
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_STATE", "coffer_gcm: addon instance not initialised");
    return NULL;
  }
  return instance;
}

// Feed `length` bytes (AAD when out == NULL) through the context in int-sized steps.
static bool update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t length) {
  size_t done = 0;
  while (done < length) {
    int step = (int)(length - done < STEP_BYTES ? length - done : STEP_BYTES);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out == NULL ? NULL : out + done, &written, in + done, step) != 1) return false;
    if (out != NULL && written != step) return false; // GCM is a stream mode: all of it, at once
    done += (size_t)step;
  }
  return true;
}

// Key, IV and AAD go in before any byte of dst is written, so only src and dst need the overlap rule.
static bool begin(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, const gcm_arguments *args, int encrypt, const char **failed) {
  *failed = "EVP_CipherInit_ex2";
  if (EVP_CipherInit_ex2(ctx, cipher, args->key.data, args->iv.data, encrypt, NULL) != 1) return false;
  *failed = "EVP_CipherUpdate (aad)";
  if (args->aad.length > 0 && !update(ctx, NULL, args->aad.data, args->aad.length)) return false;
  return true;
}

// A pointer for an empty argument (get_bytes gives NULL for zero bytes): vaes_gcm.c reads nothing through it.
static const uint8_t *or_empty(const uint8_t *data) {
  static const uint8_t empty[1] = {0};
  return data != NULL ? data : empty;
}

static bool use_vaes(const gcm_instance *instance, const gcm_arguments *args) {
  return instance->vaes && (uint64_t)args->src.length <= VAES_MESSAGE_BYTES_MAX;
}

const char *gcm_seal_into(const gcm_instance *instance, const uint8_t *key, const uint8_t *iv, const uint8_t *aad, size_t aad_bytes,
                          const uint8_t *src, uint8_t *dst, size_t length, uint8_t *tag) {
  if (instance->vaes && (uint64_t)length <= VAES_MESSAGE_BYTES_MAX) {
    vaes_gcm_key schedule; // round keys and powers of H, wiped before returning
    uint8_t none[1];
    vaes_gcm_init(&schedule, key);
    vaes_gcm_seal(&schedule, iv, or_empty(aad), aad_bytes, or_empty(src), dst != NULL ? dst : none, length, tag);
    vaes_gcm_clear(&schedule);
    return NULL;
  }
  EVP_CIPHER_CTX *ctx = instance->ctx;
  const char *failed = "EVP_CipherInit_ex2";
  uint8_t tail[16];
  int tail_bytes = 0;
  bool ok = EVP_CipherInit_ex2(ctx, instance->cipher, key, iv, 1, NULL) == 1;
  if (ok && aad_bytes > 0) {
    failed = "EVP_CipherUpdate (aad)";
    ok = update(ctx, NULL, aad, aad_bytes);
  }
  if (ok) {
    failed = "EVP_CipherUpdate";
    ok = update(ctx, dst, src, length);
  }
  if (ok) {
    failed = "EVP_CipherFinal_ex";
    ok = EVP_CipherFinal_ex(ctx, tail, &tail_bytes) == 1 && tail_bytes == 0;
  }
  if (ok) {
    failed = "EVP_CTRL_AEAD_GET_TAG";
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) == 1;
  }
  bool reset = EVP_CIPHER_CTX_reset(ctx) == 1; // frees the key schedule
  if (ok && !reset) failed = "EVP_CIPHER_CTX_reset";
  return ok && reset ? NULL : failed;
}

static napi_value gcm_seal(napi_env env, napi_callback_info info) {
  gcm_arguments args;
  gcm_instance *instance = get_arguments(env, info, &args);
  if (instance == NULL) return NULL;
  const char *failed = gcm_seal_into(instance, args.key.data, args.iv.data, args.aad.data, args.aad.length, args.src.data,
                                     args.dst.data, args.src.length, args.tag.data);
  if (failed != NULL) {
    // Never hand out a half-made ciphertext or a stale tag.
    if (args.dst.length > 0) OPENSSL_cleanse(args.dst.data, args.dst.length);
    OPENSSL_cleanse(args.tag.data, TAG_BYTES);
    throw_openssl(env, failed);
  }
  return NULL; // undefined
}

static napi_value gcm_open(napi_env env, napi_callback_info info) {
  gcm_arguments args;
  gcm_instance *instance = get_arguments(env, info, &args);
  if (instance == NULL) return NULL;
  if (use_vaes(instance, &args)) {
    vaes_gcm_key key;
    uint8_t none[1];
    vaes_gcm_init(&key, args.key.data);
    // Zeroes dst itself when the tag is wrong.
    bool authentic = vaes_gcm_open(&key, args.iv.data, or_empty(args.aad.data), args.aad.length, or_empty(args.src.data),
                                   args.dst.data != NULL ? args.dst.data : none, args.src.length, args.tag.data) == 1;
    vaes_gcm_clear(&key);
    napi_value result = NULL;
    if (napi_get_boolean(env, authentic, &result) != napi_ok) return NULL;
    return result;
  }
  EVP_CIPHER_CTX *ctx = instance->ctx;
  const char *failed = NULL;
  uint8_t tail[16];
  int tail_bytes = 0;
  bool ok = begin(ctx, instance->cipher, &args, 0, &failed);
  if (ok) {
    // The context keeps its own copy, so the tag is read before dst is written.
    failed = "EVP_CTRL_AEAD_SET_TAG";
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, args.tag.data) == 1;
  }
  if (ok) {
    failed = "EVP_CipherUpdate";
    ok = update(ctx, args.dst.data, args.src.data, args.src.length);
  }
  bool authentic = false;
  if (ok) {
    // <= 0 is a tag mismatch (the only way GCM's final fails once the updates succeeded).
    authentic = EVP_CipherFinal_ex(ctx, tail, &tail_bytes) == 1 && tail_bytes == 0;
    if (!authentic) ERR_clear_error();
  }
  bool reset = EVP_CIPHER_CTX_reset(ctx) == 1;
  if (!ok || !reset || !authentic) {
    // Unauthenticated plaintext never stays behind in dst.
    if (args.dst.length > 0) OPENSSL_cleanse(args.dst.data, args.dst.length);
  }
  if (!ok || !reset) {
    throw_openssl(env, ok ? "EVP_CIPHER_CTX_reset" : failed);
    return NULL;
  }
  napi_value result = NULL;
  if (napi_get_boolean(env, authentic, &result) != napi_ok) return NULL;
  return result;
}

static bool export_function(napi_env env, napi_value exports, const char *name, napi_callback callback, gcm_instance *instance) {
  napi_value function = NULL;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, instance, &function) == napi_ok &&
         napi_set_named_property(env, exports, name, function) == napi_ok;
}

static bool export_string(napi_env env, napi_value exports, const char *name, const char *text) {
  napi_value value = NULL;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value) == napi_ok &&
         napi_set_named_property(env, exports, name, value) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (OPENSSL_version_major() < 3) {
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_OPENSSL", "coffer_gcm: the running Node does not use OpenSSL 3");
    return NULL;
  }
  gcm_instance *instance = OPENSSL_zalloc(sizeof *instance);
  if (instance == NULL) {
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_OPENSSL", "coffer_gcm: out of memory");
    return NULL;
  }
  instance->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  if (instance->cipher == NULL) {
    instance_free(env, instance, NULL);
    throw_openssl(env, "EVP_CIPHER_fetch(AES-256-GCM)");
    return NULL;
  }
  instance->ctx = EVP_CIPHER_CTX_new();
  if (instance->ctx == NULL) {
    instance_free(env, instance, NULL);
    throw_openssl(env, "EVP_CIPHER_CTX_new");
    return NULL;
  }
  instance->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  instance->md_ctx = EVP_MD_CTX_new();
  if (instance->md == NULL || instance->md_ctx == NULL) {
    instance_free(env, instance, NULL);
    throw_openssl(env, "fetching SHA-256");
    return NULL;
  }
  if (EVP_CIPHER_get_iv_length(instance->cipher) != IV_BYTES || EVP_CIPHER_get_key_length(instance->cipher) != KEY_BYTES) {
    instance_free(env, instance, NULL);
    throw_error(env, PLAIN_ERROR, "ERR_COFFER_GCM_OPENSSL", "coffer_gcm: unexpected AES-256-GCM key or IV length");
    return NULL;
  }
  const char *vaes_setting = getenv("COFFER_NATIVE_GCM_VAES");
  instance->vaes = !(vaes_setting != NULL && strcasecmp(vaes_setting, "off") == 0) && vaes_gcm_available() == 1;
  // From here on the environment owns the instance and frees it when it is torn down (thread exit).
  if (napi_set_instance_data(env, instance, instance_free, NULL) != napi_ok) {
    instance_free(env, instance, NULL);
    return NULL;
  }
  if (!export_function(env, exports, "seal", gcm_seal, instance) || !export_function(env, exports, "open", gcm_open, instance) ||
      !export_function(env, exports, "openBlock", dare_open_block, instance) ||
      !export_function(env, exports, "newSealedObjectKey", sse_new_sealed_object_key, instance) ||
      !export_function(env, exports, "kesSeal", sse_kes_seal, instance) ||
      !export_string(env, exports, "openssl", OpenSSL_version(OPENSSL_VERSION)) ||
      !export_string(env, exports, "implementation", instance->vaes ? "vaes-avx512" : "openssl")) {
    return NULL;
  }
  return exports;
}
