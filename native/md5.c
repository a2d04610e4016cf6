// coffer_md5: running MD5s (the ETags of large uploads) whose state lives in the caller's memory, so any
// thread can continue any upload's hash, and several uploads' next blocks can be hashed in one call across
// SIMD lanes (native/md5_lanes.c). workers/native-md5.ts loads it; workers/md5-batcher.ts decides what is
// hashed together.
//
//   stateBytes                       bytes a state needs (an OpenSSL MD5_CTX)
//   kernels                          what this CPU can run: ["openssl"], then "avx2", "avx512vl"
//   init(state)                      a fresh MD5 in state (a Uint8Array of ≥ stateBytes, any alignment)
//   update(states, datas, kernel?)   hash datas[i] into states[i] (arrays of equal length ≤ 64); kernel
//                                    caps the SIMD kernel (an index into kernels; default the best)
//   final(state, out)                the digest into out's first 16 bytes; the state is spent
//
// Per lane, a partial block left from an earlier call is completed first and the bytes after the last whole
// block are kept in the state, all through OpenSSL's MD5_Update (Node's own OpenSSL, its assembly for one
// message); the whole blocks of two or more lanes go through the SIMD kernel together, in groups of up to
// eight, for as many blocks as the shortest lane of the group has. A lane alone takes MD5_Update's path.
// The states are copied in and out, so the caller's memory may be a SharedArrayBuffer at any offset.
//
// Context-free: no instance data, so the main thread and every Piscina worker share the code and nothing else.

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#define OPENSSL_SUPPRESS_DEPRECATED // MD5_CTX and MD5_Update: deprecated in OpenSSL 3, exported by Node
#include <node_api.h>

#include <stdint.h>
#include <string.h>

#include <openssl/md5.h>
#include <openssl/opensslv.h>

#include "md5_lanes.h"
#include "napi_errors.h"

#define LANES_MAX 64
#define BLOCK_BYTES 64

// Set by every environment's init to the same value (atomically: workers load the addon concurrently).
static md5_lanes_kind best_kind = MD5_LANES_NONE;

typedef struct {
  MD5_CTX ctx;
  uint8_t *state; // the caller's copy
  const uint8_t *data;
  size_t length;
} lane;

static bool get_bytes(napi_env env, napi_value value, const char *name, uint8_t **data, size_t *length) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok) return false;
  napi_typedarray_type type = napi_int8_array;
  void *pointer = NULL;
  size_t bytes = 0;
  if (is_typed_array && napi_get_typedarray_info(env, value, &type, &bytes, &pointer, NULL, NULL) != napi_ok) return false;
  if (!is_typed_array || type != napi_uint8_array || (bytes > 0 && pointer == NULL)) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Uint8Array or Buffer", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  *data = pointer;
  *length = bytes;
  return true;
}

static bool get_state(napi_env env, napi_value value, uint8_t **state) {
  size_t length = 0;
  if (!get_bytes(env, value, "state", state, &length)) return false;
  if (length < sizeof(MD5_CTX)) {
    char message[96];
    snprintf(message, sizeof message, "state must hold at least %zu bytes", sizeof(MD5_CTX));
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  return true;
}

// What MD5_Update does to the bit count for `bytes` more input (OpenSSL's HASH_UPDATE).
static void add_length(MD5_CTX *ctx, size_t bytes) {
  MD5_LONG low = (MD5_LONG)(ctx->Nl + (((MD5_LONG)bytes) << 3));
  if (low < ctx->Nl) ctx->Nh++;
  ctx->Nh += (MD5_LONG)(bytes >> 29);
  ctx->Nl = low;
}

// The whole blocks of the lanes in `active` (each with ≥ 1 whole block and no partial block pending).
static void hash_whole_blocks(lane *lanes, size_t count, md5_lanes_kind kind) {
  for (;;) {
    size_t active[MD5_LANES];
    size_t found = 0;
    for (size_t i = 0; i < count && found < MD5_LANES; i++) {
      if (lanes[i].length >= BLOCK_BYTES) active[found++] = i;
    }
    if (found == 0) return;
    if (found == 1 || kind == MD5_LANES_NONE) {
      for (size_t j = 0; j < found; j++) {
        lane *one = &lanes[active[j]];
        size_t whole = one->length & ~(size_t)(BLOCK_BYTES - 1);
        MD5_Update(&one->ctx, one->data, whole);
        one->data += whole;
        one->length -= whole;
      }
      continue;
    }
    size_t blocks = SIZE_MAX;
    for (size_t j = 0; j < found; j++) {
      size_t lane_blocks = lanes[active[j]].length / BLOCK_BYTES;
      if (lane_blocks < blocks) blocks = lane_blocks;
    }
    uint32_t state[4 * MD5_LANES];
    const uint8_t *data[MD5_LANES];
    for (size_t slot = 0; slot < MD5_LANES; slot++) {
      const lane *source = &lanes[active[slot < found ? slot : 0]]; // spare slots repeat the first lane
      state[0 * MD5_LANES + slot] = source->ctx.A;
      state[1 * MD5_LANES + slot] = source->ctx.B;
      state[2 * MD5_LANES + slot] = source->ctx.C;
      state[3 * MD5_LANES + slot] = source->ctx.D;
      data[slot] = source->data;
    }
    md5_lanes_compress(kind, state, data, blocks);
    for (size_t slot = 0; slot < found; slot++) {
      lane *target = &lanes[active[slot]];
      target->ctx.A = state[0 * MD5_LANES + slot];
      target->ctx.B = state[1 * MD5_LANES + slot];
      target->ctx.C = state[2 * MD5_LANES + slot];
      target->ctx.D = state[3 * MD5_LANES + slot];
      add_length(&target->ctx, blocks * BLOCK_BYTES);
      target->data += blocks * BLOCK_BYTES;
      target->length -= blocks * BLOCK_BYTES;
    }
  }
}

static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uint8_t *state = NULL;
  if (argc < 1 || !get_state(env, argv[0], &state)) return NULL;
  MD5_CTX ctx;
  MD5_Init(&ctx);
  memcpy(state, &ctx, sizeof ctx);
  return NULL;
}

static bool get_array(napi_env env, napi_value value, const char *name, uint32_t *length) {
  bool is_array = false;
  if (napi_is_array(env, value, &is_array) != napi_ok) return false;
  if (!is_array) {
    char message[64];
    snprintf(message, sizeof message, "%s must be an array", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return napi_get_array_length(env, value, length) == napi_ok;
}

static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS", "update(states, datas[, kernel])");
    return NULL;
  }
  uint32_t count = 0, data_count = 0;
  if (!get_array(env, argv[0], "states", &count) || !get_array(env, argv[1], "datas", &data_count)) return NULL;
  if (count != data_count || count > LANES_MAX) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "states and datas must have the same length, at most 64");
    return NULL;
  }
  md5_lanes_kind kind = __atomic_load_n(&best_kind, __ATOMIC_RELAXED);
  if (argc >= 3) {
    napi_valuetype type = napi_undefined;
    if (napi_typeof(env, argv[2], &type) != napi_ok) return NULL;
    if (type != napi_undefined) {
      int32_t cap = 0;
      if (type != napi_number || napi_get_value_int32(env, argv[2], &cap) != napi_ok || cap < 0) {
        throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "kernel must be a non-negative integer");
        return NULL;
      }
      if ((md5_lanes_kind)cap < kind) kind = (md5_lanes_kind)cap;
    }
  }
  lane lanes[LANES_MAX];
  for (uint32_t i = 0; i < count; i++) {
    napi_value state_value, data_value;
    if (napi_get_element(env, argv[0], i, &state_value) != napi_ok || napi_get_element(env, argv[1], i, &data_value) != napi_ok) return NULL;
    uint8_t *data = NULL;
    if (!get_state(env, state_value, &lanes[i].state) || !get_bytes(env, data_value, "data", &data, &lanes[i].length)) return NULL;
    for (uint32_t j = 0; j < i; j++) {
      if (lanes[j].state == lanes[i].state) {
        throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "a state appears twice in one update");
        return NULL;
      }
    }
    lanes[i].data = data;
    memcpy(&lanes[i].ctx, lanes[i].state, sizeof(MD5_CTX));
  }
  for (uint32_t i = 0; i < count; i++) {
    lane *one = &lanes[i];
    if (one->ctx.num != 0 && one->length > 0) {
      size_t take = BLOCK_BYTES - one->ctx.num;
      if (take > one->length) take = one->length;
      MD5_Update(&one->ctx, one->data, take);
      one->data += take;
      one->length -= take;
    }
  }
  hash_whole_blocks(lanes, count, kind);
  for (uint32_t i = 0; i < count; i++) {
    if (lanes[i].length > 0) MD5_Update(&lanes[i].ctx, lanes[i].data, lanes[i].length); // < 64 bytes: kept
    memcpy(lanes[i].state, &lanes[i].ctx, sizeof(MD5_CTX));
  }
  return NULL;
}

static napi_value final(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uint8_t *state = NULL, *out = NULL;
  size_t out_length = 0;
  if (argc < 2 || !get_state(env, argv[0], &state) || !get_bytes(env, argv[1], "out", &out, &out_length)) return NULL;
  if (out_length < MD5_DIGEST_LENGTH) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "out must hold at least 16 bytes");
    return NULL;
  }
  MD5_CTX ctx;
  memcpy(&ctx, state, sizeof ctx);
  MD5_Final(out, &ctx);
  memset(state, 0, sizeof ctx);
  return NULL;
}

NAPI_MODULE_INIT() {
  const md5_lanes_kind detected = md5_lanes_detect();
  __atomic_store_n(&best_kind, detected, __ATOMIC_RELAXED);
  static const char *const names[] = {"openssl", "avx2", "avx512vl"};
  napi_value kernels, state_bytes;
  if (napi_create_array_with_length(env, (size_t)detected + 1, &kernels) != napi_ok) return NULL;
  for (uint32_t i = 0; i <= (uint32_t)detected; i++) {
    napi_value name;
    if (napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &name) != napi_ok || napi_set_element(env, kernels, i, name) != napi_ok) return NULL;
  }
  if (napi_create_uint32(env, (uint32_t)sizeof(MD5_CTX), &state_bytes) != napi_ok) return NULL;
  napi_property_descriptor properties[] = {
      {"stateBytes", NULL, NULL, NULL, NULL, state_bytes, napi_enumerable, NULL},
      {"kernels", NULL, NULL, NULL, NULL, kernels, napi_enumerable, NULL},
      {"init", NULL, init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"update", NULL, update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"final", NULL, final, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) return NULL;
  return exports;
}
