// openBlock: read a block of DARE 2.0 packages from a file and open them, as ONE job on libuv's thread pool.
//
// Why: an encrypted GET's blocks are read on the thread pool anyway (one job per 1 MiB block). Opening a block
// on the event loop costs it ~115 µs per MiB even with native/vaes_gcm.c, and handing the block to another
// thread costs about as much (a wake-up of a sleeping thread on a small VM); here the thread that read the
// block opens it before the one completion the read needed anyway, so the event loop does neither.
//
//   openBlock(fd, position, readBytes, buffer, blockOffset, blockBytes, key, firstSequence, out)
//     → Promise<{ gotBytes, opened, plaintextBytes, final, nonce, error }>
//
//   1. Unless fd is -1: pread readBytes bytes at `position` into buffer[0..) (retried on EINTR and after short
//      reads of whole 4 KiB pages, as engine/file-reader.ts reads O_DIRECT files); gotBytes is what it got.
//      A failed read rejects with an Error shaped like Node's fs errors (code, errno, syscall 'read').
//   2. If buffer[blockOffset, blockOffset + blockBytes) is all there: open its packages into out, the first
//      with sequence number firstSequence, with exactly the checks and messages of workers/dare.ts's
//      openPackagesInto (version, cipher, framing, payload sizes, one stream nonce, the tag, nothing after the
//      final package). opened is then true; error is undefined or the DARE reason ("authentication failed",
//      ...), and out then holds no usable bytes. nonce is the stream nonce of the block's headers (final flag
//      cleared), for the caller to compare across blocks; final whether the block ended the stream.
//      opened is false when the bytes were short of the block (the caller reports its short file) or are
//      ChaCha20-Poly1305 packages, which only node:crypto opens (the caller opens them itself).
//
// The key is copied into the job and wiped with the cipher state when the job ends. buffer and out are
// referenced until the Promise settles: the caller must not touch them meanwhile. Bad arguments throw
// synchronously (TypeError, RangeError). AES-256-GCM runs through vaes_gcm.c when gcm.c chose it, else
// through OpenSSL with a cipher context of the job's own.

#define _POSIX_C_SOURCE 200809L

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "dare_open.h"
#include "gcm_instance.h"
#include "napi_errors.h"
#include "vaes_gcm.h"

#define HEADER_BYTES 16
#define PAYLOAD_BYTES_MAX 65536
#define PACKAGE_OVERHEAD_BYTES (HEADER_BYTES + GCM_TAG_BYTES)
#define VERSION_20 0x20
#define CIPHER_AES_GCM 0x00
#define CIPHER_CHACHA 0x01
#define FINAL_FLAG 0x80
#define SEQUENCE_MAX 0xffffffffu
#define READ_ALIGN_BYTES 4096

typedef enum {
  OUTCOME_OPENED,        // every package checked out (or the DARE `reason` below)
  OUTCOME_SHORT,         // fewer bytes than the block: not opened
  OUTCOME_NOT_GCM,       // ChaCha20-Poly1305 packages: not opened
  OUTCOME_READ_FAILED,   // read_errno
  OUTCOME_OUT_TOO_SMALL, // a caller's bug
  OUTCOME_OPENSSL_FAILED,
} outcome_kind;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref, out_ref;
  const gcm_instance *instance;
  int fd;
  int64_t position;
  size_t read_bytes;
  uint8_t *buffer;
  size_t block_offset, block_bytes;
  uint8_t *out;
  size_t out_length;
  uint8_t key[GCM_KEY_BYTES];
  uint64_t first_sequence;
  // results
  outcome_kind outcome;
  const char *reason; // a DARE failure (OUTCOME_OPENED), else NULL
  int read_errno;
  char openssl_failure[320];
  size_t got_bytes, plaintext_bytes;
  bool final;
  bool have_nonce;
  uint8_t nonce[GCM_IV_BYTES];
} open_job;

// ------------------------------------------------------------------------------------ the cipher, per job

typedef struct {
  bool vaes;
  vaes_gcm_key vaes_key;
  EVP_CIPHER_CTX *ctx;
} job_cipher;

static bool cipher_begin(open_job *job, job_cipher *cipher) {
  cipher->vaes = job->instance->vaes;
  cipher->ctx = NULL;
  if (cipher->vaes) {
    vaes_gcm_init(&cipher->vaes_key, job->key);
    return true;
  }
  cipher->ctx = EVP_CIPHER_CTX_new();
  return cipher->ctx != NULL && EVP_CipherInit_ex2(cipher->ctx, job->instance->cipher, job->key, NULL, 0, NULL) == 1;
}

// 1 authentic, 0 not (dst zeroed), -1 an OpenSSL failure.
static int cipher_open(job_cipher *cipher, const uint8_t iv[GCM_IV_BYTES], const uint8_t *aad, size_t aad_bytes,
                       const uint8_t *src, uint8_t *dst, size_t length, const uint8_t tag[GCM_TAG_BYTES]) {
  if (cipher->vaes) return vaes_gcm_open(&cipher->vaes_key, iv, aad, aad_bytes, src, dst, length, tag);
  EVP_CIPHER_CTX *ctx = cipher->ctx;
  int written = 0;
  // A payload is at most 64 KiB, so the int lengths below cannot overflow.
  if (EVP_CipherInit_ex2(ctx, NULL, NULL, iv, 0, NULL) != 1 ||
      EVP_CipherUpdate(ctx, NULL, &written, aad, (int)aad_bytes) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_BYTES, (void *)tag) != 1 ||
      EVP_CipherUpdate(ctx, dst, &written, src, (int)length) != 1) {
    return -1;
  }
  uint8_t tail[16];
  int tail_bytes = 0;
  if (EVP_CipherFinal_ex(ctx, tail, &tail_bytes) == 1 && tail_bytes == 0) return 1;
  ERR_clear_error(); // a wrong tag queues an error on this thread
  memset(dst, 0, length);
  return 0;
}

static void cipher_end(job_cipher *cipher) {
  if (cipher->vaes) {
    vaes_gcm_clear(&cipher->vaes_key);
  } else {
    EVP_CIPHER_CTX_free(cipher->ctx); // clears the key schedule
  }
}

// ------------------------------------------------------------------------------------ the job

static void read_block(open_job *job) {
  size_t got = 0;
  while (got < job->read_bytes) {
    ssize_t n = pread(job->fd, job->buffer + got, job->read_bytes - got, (off_t)(job->position + (int64_t)got));
    if (n < 0) {
      if (errno == EINTR) continue;
      job->read_errno = errno;
      job->outcome = OUTCOME_READ_FAILED;
      return;
    }
    got += (size_t)n;
    if (n == 0 || got % READ_ALIGN_BYTES != 0) break; // the end of the file
  }
  job->got_bytes = got;
}

// An OpenSSL call failed on the pool thread: keep its reason for the completion (which throws on the event
// loop), and empty this thread's error queue.
static void record_openssl_failure(open_job *job, const char *what) {
  unsigned long error = ERR_peek_last_error();
  char reason[256] = "no OpenSSL error queued";
  if (error != 0) ERR_error_string_n(error, reason, sizeof reason);
  ERR_clear_error();
  snprintf(job->openssl_failure, sizeof job->openssl_failure, "coffer_gcm: %s: %s", what, reason);
  job->outcome = OUTCOME_OPENSSL_FAILED;
}

// workers/dare.ts's openPackagesInto over the block, in the same order of checks. Returns the DARE reason of
// a failure, or NULL (and sets the outcome for the failures that are not DARE's).
static const char *open_packages(open_job *job, job_cipher *cipher) {
  const uint8_t *block = job->buffer + job->block_offset;
  size_t offset = 0, written = 0;
  uint64_t sequence = job->first_sequence;
  bool final_seen = false;
  while (offset < job->block_bytes) {
    if (final_seen) return "unexpected data after final package";
    if (job->block_bytes - offset < HEADER_BYTES) return "unexpected EOF";
    const uint8_t *package = block + offset;
    if (package[0] != VERSION_20) return "unsupported version";
    if (package[1] == CIPHER_CHACHA) {
      job->outcome = OUTCOME_NOT_GCM;
      return NULL;
    }
    if (package[1] != CIPHER_AES_GCM) return "unsupported cipher";
    size_t payload_bytes = ((size_t)package[2] | ((size_t)package[3] << 8)) + 1;
    if (job->block_bytes - offset < payload_bytes + PACKAGE_OVERHEAD_BYTES) return "unexpected EOF";
    if (job->out_length - written < payload_bytes) {
      job->outcome = OUTCOME_OUT_TOO_SMALL;
      return NULL;
    }
    bool is_final = (package[4] & FINAL_FLAG) != 0;
    if (!is_final && payload_bytes != PAYLOAD_BYTES_MAX) return "invalid payload size";
    if (sequence > SEQUENCE_MAX) return "invalid payload size";
    uint8_t masked[GCM_IV_BYTES];
    memcpy(masked, package + 4, GCM_IV_BYTES);
    masked[0] &= (uint8_t)~FINAL_FLAG;
    if (!job->have_nonce) {
      memcpy(job->nonce, masked, GCM_IV_BYTES);
      job->have_nonce = true;
    } else if (CRYPTO_memcmp(masked, job->nonce, GCM_IV_BYTES) != 0) {
      return "header nonce mismatch";
    }
    // The AEAD nonce: the header nonce (flag included) with its last 4 bytes (uint32 LE) XORed with the sequence.
    uint8_t iv[GCM_IV_BYTES];
    memcpy(iv, package + 4, GCM_IV_BYTES);
    uint32_t counter = (uint32_t)iv[8] | ((uint32_t)iv[9] << 8) | ((uint32_t)iv[10] << 16) | ((uint32_t)iv[11] << 24);
    counter ^= (uint32_t)sequence;
    iv[8] = (uint8_t)counter;
    iv[9] = (uint8_t)(counter >> 8);
    iv[10] = (uint8_t)(counter >> 16);
    iv[11] = (uint8_t)(counter >> 24);
    int authentic = cipher_open(cipher, iv, package, 4, package + HEADER_BYTES, job->out + written, payload_bytes,
                                package + HEADER_BYTES + payload_bytes);
    if (authentic < 0) {
      record_openssl_failure(job, "openBlock failed");
      return NULL;
    }
    if (authentic == 0) return "authentication failed";
    written += payload_bytes;
    offset += payload_bytes + PACKAGE_OVERHEAD_BYTES;
    sequence += 1;
    if (is_final) final_seen = true;
  }
  job->plaintext_bytes = written;
  job->final = final_seen;
  return NULL;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  open_job *job = data;
  job->outcome = OUTCOME_OPENED;
  if (job->fd >= 0) {
    read_block(job);
    if (job->outcome == OUTCOME_READ_FAILED) return;
  } else {
    job->got_bytes = job->block_offset + job->block_bytes;
  }
  if (job->got_bytes < job->block_offset + job->block_bytes) {
    job->outcome = OUTCOME_SHORT;
    return;
  }
  job_cipher cipher;
  if (!cipher_begin(job, &cipher)) {
    record_openssl_failure(job, "openBlock could not set up the cipher");
    if (cipher.ctx != NULL) EVP_CIPHER_CTX_free(cipher.ctx);
    OPENSSL_cleanse(job->key, sizeof job->key);
    return;
  }
  job->reason = open_packages(job, &cipher);
  cipher_end(&cipher);
  OPENSSL_cleanse(job->key, sizeof job->key);
}

static void free_job(napi_env env, open_job *job) {
  if (job->buffer_ref != NULL) napi_delete_reference(env, job->buffer_ref);
  if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  OPENSSL_cleanse(job->key, sizeof job->key);
  free(job);
}

static bool set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number = NULL;
  return napi_create_double(env, value, &number) == napi_ok && napi_set_named_property(env, object, name, number) == napi_ok;
}

static bool set_boolean(napi_env env, napi_value object, const char *name, bool value) {
  napi_value boolean = NULL;
  return napi_get_boolean(env, value, &boolean) == napi_ok && napi_set_named_property(env, object, name, boolean) == napi_ok;
}

// A Node-style fs error: "EIO: i/o error, read" with code, errno (libuv's negative number) and syscall.
static napi_value read_error(napi_env env, int error_number) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s, read", uv_err_name(-error_number), uv_strerror(-error_number));
  napi_value text = NULL, code = NULL, error = NULL, errno_value = NULL, syscall = NULL;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_string_utf8(env, uv_err_name(-error_number), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok ||
      napi_create_int32(env, -error_number, &errno_value) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_value) != napi_ok ||
      napi_create_string_utf8(env, "read", NAPI_AUTO_LENGTH, &syscall) != napi_ok ||
      napi_set_named_property(env, error, "syscall", syscall) != napi_ok) {
    return NULL;
  }
  return error;
}

static napi_value plain_error(napi_env env, const char *code_text, const char *message) {
  napi_value text = NULL, code = NULL, error = NULL;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_string_utf8(env, code_text, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok) {
    return NULL;
  }
  return error;
}

static napi_value result_object(napi_env env, const open_job *job) {
  napi_value result = NULL, nonce = NULL, reason = NULL;
  bool opened = job->outcome == OUTCOME_OPENED;
  if (napi_create_object(env, &result) != napi_ok || !set_number(env, result, "gotBytes", (double)job->got_bytes) ||
      !set_boolean(env, result, "opened", opened) ||
      !set_number(env, result, "plaintextBytes", opened && job->reason == NULL ? (double)job->plaintext_bytes : 0) ||
      !set_boolean(env, result, "final", opened && job->reason == NULL && job->final)) {
    return NULL;
  }
  if (opened && job->have_nonce) {
    void *copy = NULL;
    if (napi_create_buffer_copy(env, GCM_IV_BYTES, job->nonce, &copy, &nonce) != napi_ok) return NULL;
  } else if (napi_get_undefined(env, &nonce) != napi_ok) {
    return NULL;
  }
  if (napi_set_named_property(env, result, "nonce", nonce) != napi_ok) return NULL;
  if (opened && job->reason != NULL) {
    if (napi_create_string_utf8(env, job->reason, NAPI_AUTO_LENGTH, &reason) != napi_ok) return NULL;
  } else if (napi_get_undefined(env, &reason) != napi_ok) {
    return NULL;
  }
  if (napi_set_named_property(env, result, "error", reason) != napi_ok) return NULL;
  return result;
}

static void job_complete(napi_env env, napi_status status, void *data) {
  open_job *job = data;
  napi_value value = NULL;
  bool resolve = false;
  if (status != napi_ok) {
    value = plain_error(env, "ERR_COFFER_GCM", "coffer_gcm: openBlock was cancelled");
  } else if (job->outcome == OUTCOME_READ_FAILED) {
    value = read_error(env, job->read_errno);
  } else if (job->outcome == OUTCOME_OUT_TOO_SMALL) {
    value = plain_error(env, "ERR_OUT_OF_RANGE", "coffer_gcm: openBlock's output is too small for the plaintext");
  } else if (job->outcome == OUTCOME_OPENSSL_FAILED) {
    value = plain_error(env, "ERR_COFFER_GCM_OPENSSL", job->openssl_failure);
  } else {
    value = result_object(env, job);
    resolve = true;
  }
  if (value == NULL) { // a failed napi call: reject with whatever is pending, or a generic error
    bool pending = false;
    resolve = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_get_and_clear_last_exception(env, &value);
    } else {
      value = plain_error(env, "ERR_COFFER_GCM", "coffer_gcm: openBlock could not build its result");
    }
  }
  if (resolve) {
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    napi_reject_deferred(env, job->deferred, value);
  }
  free_job(env, job);
}

// ------------------------------------------------------------------------------------ arguments

static bool get_integer(napi_env env, napi_value value, const char *name, double min, double max, double *out) {
  char message[160];
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s must be a number", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  double number = 0;
  if (napi_get_value_double(env, value, &number) != napi_ok) return false;
  if (!(number >= min && number <= max) || number != (double)(int64_t)number) {
    snprintf(message, sizeof message, "%s must be an integer from %.0f to %.0f", name, min, max);
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = number;
  return true;
}

static bool get_uint8_array(napi_env env, napi_value value, const char *name, uint8_t **data, size_t *length) {
  char message[128];
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok) return false;
  napi_typedarray_type type = napi_int8_array;
  void *bytes = NULL;
  if (is_typed_array && napi_get_typedarray_info(env, value, &type, length, &bytes, NULL, NULL) != napi_ok) return false;
  if (!is_typed_array || type != napi_uint8_array) {
    snprintf(message, sizeof message, "%s must be a Uint8Array or Buffer", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  if (*length > 0 && bytes == NULL) {
    snprintf(message, sizeof message, "%s has no backing memory", name);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  *data = bytes;
  return true;
}

#define SAFE_INTEGER_MAX 9007199254740991.0

napi_value dare_open_block(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  size_t argc = 9;
  void *instance_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &instance_data) != napi_ok) return NULL;
  if (argc < 9) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS",
                "expected (fd, position, readBytes, buffer, blockOffset, blockBytes, key, firstSequence, out)");
    return NULL;
  }
  double fd = 0, position = 0, read_bytes = 0, block_offset = 0, block_bytes = 0, first_sequence = 0;
  uint8_t *buffer = NULL, *key = NULL, *out = NULL;
  size_t buffer_length = 0, key_length = 0, out_length = 0;
  if (!get_integer(env, argv[0], "fd", -1, INT32_MAX, &fd) ||
      !get_integer(env, argv[1], "position", 0, SAFE_INTEGER_MAX, &position) ||
      !get_integer(env, argv[2], "readBytes", 0, INT32_MAX, &read_bytes) ||
      !get_uint8_array(env, argv[3], "buffer", &buffer, &buffer_length) ||
      !get_integer(env, argv[4], "blockOffset", 0, INT32_MAX, &block_offset) ||
      !get_integer(env, argv[5], "blockBytes", 0, INT32_MAX, &block_bytes) ||
      !get_uint8_array(env, argv[6], "key", &key, &key_length) ||
      !get_integer(env, argv[7], "firstSequence", 0, SEQUENCE_MAX, &first_sequence) ||
      !get_uint8_array(env, argv[8], "out", &out, &out_length)) {
    return NULL;
  }
  if (key_length != GCM_KEY_BYTES) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "key must be 32 bytes");
    return NULL;
  }
  if ((size_t)read_bytes > buffer_length || (size_t)block_offset + (size_t)block_bytes > buffer_length) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "readBytes and the block must lie within buffer");
    return NULL;
  }
  uintptr_t out_start = (uintptr_t)out, block_start = (uintptr_t)(buffer + (size_t)block_offset);
  if (out_length > 0 && block_bytes > 0 && out_start < block_start + (size_t)block_bytes && block_start < out_start + out_length) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "out must not overlap the block");
    return NULL;
  }
  open_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    throw_error(env, PLAIN_ERROR, "ERR_MEMORY_ALLOCATION_FAILED", "coffer_gcm: out of memory");
    return NULL;
  }
  job->instance = instance_data;
  job->fd = (int)fd;
  job->position = (int64_t)position;
  job->read_bytes = (size_t)read_bytes;
  job->buffer = buffer;
  job->block_offset = (size_t)block_offset;
  job->block_bytes = (size_t)block_bytes;
  job->out = out;
  job->out_length = out_length;
  memcpy(job->key, key, GCM_KEY_BYTES);
  job->first_sequence = (uint64_t)first_sequence;
  napi_value promise = NULL, resource_name = NULL;
  if (napi_create_reference(env, argv[3], 1, &job->buffer_ref) != napi_ok ||
      napi_create_reference(env, argv[8], 1, &job->out_ref) != napi_ok ||
      napi_create_string_utf8(env, "coffer_gcm.openBlock", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, job_execute, job_complete, job, &job->work) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_value error = plain_error(env, "ERR_COFFER_GCM", "coffer_gcm: could not queue openBlock");
    if (error == NULL) napi_get_undefined(env, &error);
    napi_reject_deferred(env, job->deferred, error);
    free_job(env, job);
  }
  return promise;
}
