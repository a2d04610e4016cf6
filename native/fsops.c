// coffer_fs: the small-file operations of every GET, HEAD and PUT, each as ONE libuv thread-pool job
// (engine/native-fs.ts loads it; engine/objects.ts and engine/drive.ts use it). Through node:fs, reading a
// coffer.meta is open + fstat + read + close and writing one is open + write + fdatasync + close: four
// round trips to the pool, each paying work submission, a futex wake-up and a completion on the event loop
// (about 20 µs apiece on a small VM). Here the whole sequence runs in one job and settles one Promise.
//
//   readFileHead(path, maxBytes) → Promise<{ bytes: Buffer, sizeBytes: number }>
//       open(O_RDONLY), fstat, read from offset 0 up to min(st_size, maxBytes) bytes (fewer if the file
//       shrank: stops at EOF), close. sizeBytes is st_size. A directory fails with EISDIR (syscall 'read',
//       what read(2) says on Linux), whatever size the file system reports for it.
//   writeFileDurable(path, bytes) → Promise<void>
//       open(O_WRONLY|O_CREAT|O_EXCL, 0666), write all of bytes, fdatasync, close. The caller's memory is
//       written from directly: keep it unchanged until the Promise settles (as with fs.write).
//   rewriteFileDurable(path, bytes) → Promise<void>
//       open(O_WRONLY) an existing file (ENOENT if there is none), write all of bytes from offset 0,
//       ftruncate to bytes.length, fdatasync, close: a file reused in place, without allocating an inode
//       (engine/meta-recycler.ts). Same rule for the caller's memory as writeFileDurable.
//   fsyncPath(path, directory) → Promise<void>
//       open(O_RDONLY, plus O_DIRECTORY when directory is true), fsync, close.
//
// Every fd is opened O_CLOEXEC (as libuv does). open, read, write, fsync and fdatasync are retried on EINTR.
// Failures reject with an Error shaped like Node's fs errors, so code that checks `.code` works unchanged:
// message "ENOENT: no such file or directory, open '/the/path'", errno (negative, libuv's numbering), code
// (libuv's name), syscall ('open' | 'fstat' | 'read' | 'write' | 'ftruncate' | 'fdatasync' | 'fsync' | 'close') and
// path — on every error, the fd steps included (node:fs leaves path off those). The first failing step is
// reported; the fd is always closed, and a close failure is reported only when every step before it
// succeeded (so a failed close after a good fdatasync still rejects). Like libuv, close's EINTR and
// EINPROGRESS count as success: the fd is gone on Linux either way.
//
// Bad arguments throw synchronously: TypeError for a wrong type or a path with a NUL byte, RangeError for a
// maxBytes that is not an integer in [0, 2^31 - 1] (node:fs's own I/O limit).
//
// Context-aware (NAPI_MODULE_INIT) and stateless: every environment (main thread, worker threads) may load
// it. libuv's uv_err_name/uv_strerror come from the node executable (binding.gyp links with -z now, so a
// Node without them fails to load the addon instead of failing a call).

#if defined(__APPLE__)
#define _DARWIN_C_SOURCE
#else
#define _POSIX_C_SOURCE 200809L
#endif

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

// node:fs refuses longer reads (kIoMaxLength); a metadata reader never needs more.
#define MAX_READ_BYTES 2147483647.0
// Results up to this size are copied into a fresh V8 Buffer (a memcpy of a few KiB costs less than an
// external buffer's bookkeeping: a tracked backing store, a cleanup hook and a deferred finalizer); bigger
// ones hand the malloc'ed memory over as an external Buffer, without the copy.
#define COPY_RESULT_MAX_BYTES (64 * 1024)

typedef enum { OP_READ_HEAD, OP_WRITE_DURABLE, OP_REWRITE_DURABLE, OP_FSYNC_PATH } fs_op;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  fs_op op;
  // readFileHead
  size_t max_bytes;
  uint8_t *data;       // malloc'ed; handed to the result Buffer or freed in complete
  size_t data_bytes;   // bytes read into data
  int64_t size_bytes;  // st_size
  // writeFileDurable, rewriteFileDurable
  const uint8_t *src;
  size_t src_bytes;
  napi_ref src_ref; // keeps the caller's Uint8Array (and so its memory) alive during the job
  // fsyncPath
  bool directory;
  // outcome: errno of the first failing step, 0 for success
  int error;
  const char *syscall;
  char path[]; // NUL-terminated UTF-8
} fs_job;

// ------------------------------------------------------------------------------------ thread-pool side

static void fail(fs_job *job, int error, const char *syscall) {
  if (job->error != 0) return; // the first failure is the one reported
  job->error = error;
  job->syscall = syscall;
}

static int open_retry(const char *path, int flags, mode_t mode) {
  int fd;
  do {
    fd = open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

static void close_fd(fs_job *job, int fd) {
  if (close(fd) != 0 && errno != EINTR && errno != EINPROGRESS) fail(job, errno, "close");
}

// fsync(2) / fdatasync(2), as libuv does them: on macOS the data reaches the medium only with F_FULLFSYNC.
static int sync_fd(int fd, bool data_only) {
  int result;
#if defined(__APPLE__)
  (void)data_only;
  do {
    result = fcntl(fd, F_FULLFSYNC);
    if (result != 0 && errno != EINTR) result = fsync(fd); // file systems without F_FULLFSYNC
  } while (result != 0 && errno == EINTR);
#else
  do {
    result = data_only ? fdatasync(fd) : fsync(fd);
  } while (result != 0 && errno == EINTR);
#endif
  return result;
}

static void read_head(fs_job *job) {
  int fd = open_retry(job->path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    fail(job, errno, "open");
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fail(job, errno, "fstat");
  } else if (S_ISDIR(st.st_mode)) {
    fail(job, EISDIR, "read");
  } else {
    job->size_bytes = (int64_t)st.st_size;
    size_t want = st.st_size <= 0 ? 0 : ((uint64_t)st.st_size < job->max_bytes ? (size_t)st.st_size : job->max_bytes);
    if (want > 0) {
      job->data = malloc(want);
      if (job->data == NULL) fail(job, ENOMEM, "read");
    }
    while (job->error == 0 && job->data_bytes < want) {
      ssize_t got = read(fd, job->data + job->data_bytes, want - job->data_bytes);
      if (got < 0) {
        if (errno != EINTR) fail(job, errno, "read");
      } else if (got == 0) {
        break; // EOF: the file shrank since fstat
      } else {
        job->data_bytes += (size_t)got;
      }
    }
  }
  close_fd(job, fd);
}

// writeFileDurable: a new file. rewriteFileDurable: an existing one, overwritten and cut to length.
static void write_durable(fs_job *job, bool rewrite) {
  int fd = rewrite ? open_retry(job->path, O_WRONLY | O_CLOEXEC, 0) : open_retry(job->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    fail(job, errno, "open");
    return;
  }
  size_t done = 0;
  while (job->error == 0 && done < job->src_bytes) {
    ssize_t wrote = write(fd, job->src + done, job->src_bytes - done);
    if (wrote < 0) {
      if (errno != EINTR) fail(job, errno, "write");
    } else if (wrote == 0) {
      fail(job, EIO, "write"); // a regular file never takes nothing; do not spin
    } else {
      done += (size_t)wrote;
    }
  }
  if (rewrite && job->error == 0) {
    int result;
    do {
      result = ftruncate(fd, (off_t)job->src_bytes);
    } while (result != 0 && errno == EINTR);
    if (result != 0) fail(job, errno, "ftruncate");
  }
  if (job->error == 0 && sync_fd(fd, true) != 0) fail(job, errno, "fdatasync");
  close_fd(job, fd);
}

static void fsync_path(fs_job *job) {
  int fd = open_retry(job->path, O_RDONLY | O_CLOEXEC | (job->directory ? O_DIRECTORY : 0), 0);
  if (fd < 0) {
    fail(job, errno, "open");
    return;
  }
  if (sync_fd(fd, false) != 0) fail(job, errno, "fsync");
  close_fd(job, fd);
}

static void job_execute(napi_env env, void *data) {
  (void)env; // not usable off the JS thread
  fs_job *job = data;
  switch (job->op) {
    case OP_READ_HEAD: read_head(job); break;
    case OP_WRITE_DURABLE: write_durable(job, false); break;
    case OP_REWRITE_DURABLE: write_durable(job, true); break;
    case OP_FSYNC_PATH: fsync_path(job); break;
  }
}

// ------------------------------------------------------------------------------------------- JS side

static void free_job(napi_env env, fs_job *job) {
  if (job->src_ref != NULL) napi_delete_reference(env, job->src_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job->data);
  free(job);
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static bool set_string(napi_env env, napi_value object, const char *name, const char *text) {
  napi_value value = NULL;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value) == napi_ok && napi_set_named_property(env, object, name, value) == napi_ok;
}

// new Error(`${code}: ${strerror}, ${syscall} '${path}'`) with errno, code, syscall and path, as node:fs's
// errors (lib/internal/errors.js uvException), in the same property order.
static napi_value fs_error(napi_env env, const fs_job *job) {
  int uv_error = -job->error; // UV__ERR(): libuv's codes are negated errnos on Unix
  const char *code = uv_err_name(uv_error);
  const char *text = uv_strerror(uv_error);
  const char *format = "%s: %s, %s '%s'";
  int length = snprintf(NULL, 0, format, code, text, job->syscall, job->path);
  if (length < 0) return NULL;
  char *message = malloc((size_t)length + 1);
  if (message == NULL) return NULL;
  snprintf(message, (size_t)length + 1, format, code, text, job->syscall, job->path);
  napi_value message_value = NULL, error = NULL, errno_value = NULL;
  bool ok = napi_create_string_utf8(env, message, (size_t)length, &message_value) == napi_ok &&
            napi_create_error(env, NULL, message_value, &error) == napi_ok &&
            napi_create_int32(env, uv_error, &errno_value) == napi_ok &&
            napi_set_named_property(env, error, "errno", errno_value) == napi_ok &&
            set_string(env, error, "code", code) && set_string(env, error, "syscall", job->syscall) &&
            set_string(env, error, "path", job->path);
  free(message);
  return ok ? error : NULL;
}

static napi_value read_result(napi_env env, fs_job *job) {
  napi_value bytes = NULL, size = NULL, result = NULL;
  if (job->data_bytes == 0) {
    if (napi_create_buffer(env, 0, NULL, &bytes) != napi_ok) return NULL;
  } else if (job->data_bytes > COPY_RESULT_MAX_BYTES &&
             napi_create_external_buffer(env, job->data_bytes, job->data, free_data, NULL, &bytes) == napi_ok) {
    job->data = NULL; // the Buffer owns it now
  } else {
    // Small, or external buffers are not allowed (a V8 sandbox): one copy into V8's memory.
    if (napi_create_buffer_copy(env, job->data_bytes, job->data, NULL, &bytes) != napi_ok) return NULL;
  }
  if (napi_create_object(env, &result) != napi_ok || napi_set_named_property(env, result, "bytes", bytes) != napi_ok ||
      napi_create_int64(env, job->size_bytes, &size) != napi_ok || napi_set_named_property(env, result, "sizeBytes", size) != napi_ok) {
    return NULL;
  }
  return result;
}

// Settles the Promise and frees the job. Runs on the JS thread, also while an environment is torn down
// (then the napi calls may fail; the memory is freed all the same).
static void job_complete(napi_env env, napi_status status, void *data) {
  fs_job *job = data;
  if (status == napi_cancelled) fail(job, ECANCELED, "open"); // never cancelled: nothing calls napi_cancel_async_work
  napi_value value = NULL;
  bool resolve = job->error == 0;
  if (!resolve) {
    value = fs_error(env, job);
  } else if (job->op == OP_READ_HEAD) {
    value = read_result(env, job);
  } else if (napi_get_undefined(env, &value) != napi_ok) {
    value = NULL;
  }
  if (value == NULL) {
    // Building the result failed: reject with whatever was thrown, else a plain Error.
    resolve = false;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &value);
    if (value == NULL) {
      napi_value message = NULL;
      if (napi_create_string_utf8(env, "coffer_fs: could not build the result", NAPI_AUTO_LENGTH, &message) == napi_ok) {
        napi_create_error(env, NULL, message, &value);
      }
    }
    if (value == NULL) napi_get_undefined(env, &value);
  }
  if (resolve) {
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    napi_reject_deferred(env, job->deferred, value);
  }
  free_job(env, job);
}

// ------------------------------------------------------------------------------------- arguments

typedef enum { TYPE_ERROR, RANGE_ERROR } error_kind;

static void throw_error(napi_env env, error_kind kind, const char *code, const char *message) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  if (kind == TYPE_ERROR) {
    napi_throw_type_error(env, code, message);
  } else {
    napi_throw_range_error(env, code, message);
  }
}

static bool get_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv, const char *usage) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < count) {
    throw_error(env, TYPE_ERROR, "ERR_MISSING_ARGS", usage);
    return false;
  }
  return true;
}

// A job with room for the path (a string without NUL bytes), or NULL with an exception pending.
static fs_job *new_job(napi_env env, napi_value path, fs_op op) {
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, path, &type) != napi_ok) return NULL;
  if (type != napi_string) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return NULL;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, path, NULL, 0, &length) != napi_ok) return NULL;
  fs_job *job = calloc(1, sizeof *job + length + 1);
  if (job == NULL) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "coffer_fs: out of memory");
    return NULL;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, path, job->path, length + 1, &copied) != napi_ok) {
    free(job);
    return NULL;
  }
  if (copied != length || memchr(job->path, '\0', length) != NULL) {
    free(job);
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_VALUE", "path must be a string without null bytes");
    return NULL;
  }
  job->op = op;
  return job;
}

// Queues the job and returns its Promise; on failure frees the job and returns NULL.
static napi_value queue_job(napi_env env, fs_job *job, const char *name) {
  napi_value promise = NULL, resource_name = NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, job_execute, job_complete, job, &job->work) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_value message = NULL, error = NULL;
    if (napi_create_string_utf8(env, "coffer_fs: could not queue the work", NAPI_AUTO_LENGTH, &message) != napi_ok ||
        napi_create_error(env, NULL, message, &error) != napi_ok) {
      napi_get_undefined(env, &error);
    }
    napi_reject_deferred(env, job->deferred, error); // also frees the deferred
    free_job(env, job);
  }
  return promise;
}

static napi_value js_read_file_head(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (path, maxBytes)")) return NULL;
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, argv[1], &type) != napi_ok) return NULL;
  if (type != napi_number) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "maxBytes must be a number");
    return NULL;
  }
  double max_bytes = 0;
  if (napi_get_value_double(env, argv[1], &max_bytes) != napi_ok) return NULL;
  if (!(max_bytes >= 0 && max_bytes <= MAX_READ_BYTES) || max_bytes != (double)(int64_t)max_bytes) {
    throw_error(env, RANGE_ERROR, "ERR_OUT_OF_RANGE", "maxBytes must be an integer from 0 to 2147483647");
    return NULL;
  }
  fs_job *job = new_job(env, argv[0], OP_READ_HEAD);
  if (job == NULL) return NULL;
  job->max_bytes = (size_t)max_bytes;
  return queue_job(env, job, "coffer_fs.readFileHead");
}

static napi_value queue_write(napi_env env, napi_callback_info info, fs_op op, const char *name) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (path, bytes)")) return NULL;
  bool is_typed_array = false;
  if (napi_is_typedarray(env, argv[1], &is_typed_array) != napi_ok) return NULL;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void *data = NULL;
  if (is_typed_array && napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok) return NULL;
  if (!is_typed_array || type != napi_uint8_array) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "bytes must be a Uint8Array or Buffer");
    return NULL;
  }
  if (length > 0 && data == NULL) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "bytes has no backing memory");
    return NULL;
  }
  fs_job *job = new_job(env, argv[0], op);
  if (job == NULL) return NULL;
  job->src = data;
  job->src_bytes = length;
  if (napi_create_reference(env, argv[1], 1, &job->src_ref) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  return queue_job(env, job, name);
}

static napi_value js_write_file_durable(napi_env env, napi_callback_info info) {
  return queue_write(env, info, OP_WRITE_DURABLE, "coffer_fs.writeFileDurable");
}

static napi_value js_rewrite_file_durable(napi_env env, napi_callback_info info) {
  return queue_write(env, info, OP_REWRITE_DURABLE, "coffer_fs.rewriteFileDurable");
}

static napi_value js_fsync_path(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv, "expected (path, directory)")) return NULL;
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, argv[1], &type) != napi_ok) return NULL;
  if (type != napi_boolean) {
    throw_error(env, TYPE_ERROR, "ERR_INVALID_ARG_TYPE", "directory must be a boolean");
    return NULL;
  }
  bool directory = false;
  if (napi_get_value_bool(env, argv[1], &directory) != napi_ok) return NULL;
  fs_job *job = new_job(env, argv[0], OP_FSYNC_PATH);
  if (job == NULL) return NULL;
  job->directory = directory;
  return queue_job(env, job, "coffer_fs.fsyncPath");
}

static bool export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value function = NULL;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &function) == napi_ok &&
         napi_set_named_property(env, exports, name, function) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "readFileHead", js_read_file_head) ||
      !export_function(env, exports, "writeFileDurable", js_write_file_durable) ||
      !export_function(env, exports, "rewriteFileDurable", js_rewrite_file_durable) ||
      !export_function(env, exports, "fsyncPath", js_fsync_path)) {
    return NULL;
  }
  return exports;
}
