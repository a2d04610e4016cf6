// Errors thrown by the OpenSSL-backed N-API addons (native/gcm.c, native/hash.c): a JS Error, TypeError or
// RangeError unless a failed napi call already left one pending, and OpenSSL failures with OpenSSL's reason and
// its error queue emptied afterwards (node:crypto shares that queue on the same thread).

#ifndef COFFER_NAPI_ERRORS_H
#define COFFER_NAPI_ERRORS_H

#include <node_api.h>
#include <stdio.h>

#include <openssl/err.h>

typedef enum { PLAIN_ERROR, TYPE_ERROR, RANGE_ERROR } error_kind;

static inline void throw_error(napi_env env, error_kind kind, const char *code, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  if (kind == TYPE_ERROR) {
    napi_throw_type_error(env, code, message);
  } else if (kind == RANGE_ERROR) {
    napi_throw_range_error(env, code, message);
  } else {
    napi_throw_error(env, code, message);
  }
}

// "<addon>: <what> failed: <OpenSSL's reason>" with the given error code.
static inline void throw_openssl_failure(napi_env env, const char *code, const char *addon, const char *what) {
  char reason[256] = "no OpenSSL error queued";
  unsigned long error = ERR_peek_last_error();
  if (error != 0) ERR_error_string_n(error, reason, sizeof reason);
  ERR_clear_error();
  char message[400];
  snprintf(message, sizeof message, "%s: %s failed: %s", addon, what, reason);
  throw_error(env, PLAIN_ERROR, code, message);
}

#endif
