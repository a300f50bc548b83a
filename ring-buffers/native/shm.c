/*
 * xenlab_shm: the only native code in xenlab.
 *
 * Node cannot mmap(2) a file or wait on a futex, and xenlab's processes share one machine-memory
 * file (see ARCHITECTURE.md, "Memory"). This addon offers exactly these things:
 *
 *   map(fd, length, offset, writable) -> ArrayBuffer   mmap(MAP_SHARED) as an external ArrayBuffer
 *   unmap(arrayBuffer)                                  detach the buffer, then munmap it
 *   futexWait(view, index, expected, timeoutMs) -> 0 woken | 1 value differed | 2 timed out
 *   futexWake(view, index, count) -> number of waiters woken
 *   futexWaitAsync(view, index, expected, timeoutMs) -> Promise of the same codes, waiting on a
 *                                                       libuv pool thread (for event-loop processes)
 *   schedYield()                                        sched_yield(2), between looks of a poller
 *   preadv/pwritev(fd, buffer, iov, count, position)    vectored file I/O into ranges of one buffer
 *
 * The futex calls use the shared (not FUTEX_PRIVATE) form: the word lives in a MAP_SHARED file
 * mapping, so the kernel keys the wait queue on the file page and a wake from another process
 * reaches it. Everything else (rings, doorbells, layouts) is TypeScript using Atomics on the
 * returned buffer; on x86-64 V8 emits real locked instructions for those, whichever process runs
 * them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <node_api.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHECK(env, call)                                                                      \
  do {                                                                                        \
    if ((call) != napi_ok) {                                                                  \
      napi_throw_error((env), NULL, "xenlab_shm: N-API call failed: " #call);                 \
      return NULL;                                                                            \
    }                                                                                         \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "xenlab_shm: %s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &error);
  napi_value errno_val;
  napi_create_int32(env, err, &errno_val);
  napi_set_named_property(env, error, "errno", errno_val);
  napi_throw(env, error);
  return NULL;
}

/* Length of each mapping, kept so the finalizer and unmap() can munmap exactly what was mapped. */
typedef struct {
  size_t length;
  int unmapped;
} mapping_t;

static void finalize_mapping(napi_env env, void *data, void *hint) {
  (void)env;
  mapping_t *m = hint;
  if (!m->unmapped) munmap(data, m->length);
  free(m);
}

static napi_value shm_map(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "map(fd, length, offset, writable) needs 4 arguments");
    return NULL;
  }
  int32_t fd;
  int64_t length, offset;
  bool writable;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int64(env, argv[1], &length));
  CHECK(env, napi_get_value_int64(env, argv[2], &offset));
  CHECK(env, napi_get_value_bool(env, argv[3], &writable));
  long page = sysconf(_SC_PAGESIZE);
  if (length <= 0 || offset < 0 || (offset % page) != 0) {
    napi_throw_range_error(env, NULL,
                           "map: length must be > 0 and offset a non-negative multiple of the page size");
    return NULL;
  }
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *addr = mmap(NULL, (size_t)length, prot, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) return throw_errno(env, "mmap", errno);
  mapping_t *m = calloc(1, sizeof *m);
  if (!m) {
    munmap(addr, (size_t)length);
    return throw_errno(env, "calloc", ENOMEM);
  }
  m->length = (size_t)length;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, (size_t)length, finalize_mapping, m, &ab) != napi_ok) {
    munmap(addr, (size_t)length);
    free(m);
    napi_throw_error(env, NULL, "map: napi_create_external_arraybuffer failed");
    return NULL;
  }
  /* Remember the bookkeeping so unmap() can find it. */
  napi_value ext;
  CHECK(env, napi_create_external(env, m, NULL, NULL, &ext));
  CHECK(env, napi_set_named_property(env, ab, "__xenlabMapping", ext));
  return ab;
}

static napi_value shm_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_ab = false;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, NULL, "unmap(arrayBuffer) needs a buffer returned by map()");
    return NULL;
  }
  napi_value ext;
  bool has = false;
  CHECK(env, napi_has_named_property(env, argv[0], "__xenlabMapping", &has));
  if (!has) {
    napi_throw_type_error(env, NULL, "unmap: this ArrayBuffer was not returned by map()");
    return NULL;
  }
  CHECK(env, napi_get_named_property(env, argv[0], "__xenlabMapping", &ext));
  mapping_t *m;
  CHECK(env, napi_get_value_external(env, ext, (void **)&m));
  if (m->unmapped) return NULL;
  void *data;
  size_t len;
  CHECK(env, napi_get_arraybuffer_info(env, argv[0], &data, &len));
  /* Detach first: every typed array over the buffer becomes zero-length, so no JS code can touch
   * the address range after munmap. */
  CHECK(env, napi_detach_arraybuffer(env, argv[0]));
  munmap(data, m->length);
  m->unmapped = 1;
  return NULL;
}

/* Resolve (typedArray, index) to the address of a 32-bit word, bounds-checked. */
static int32_t *word_address(napi_env env, napi_value view, napi_value index_val) {
  bool is_ta = false;
  if (napi_is_typedarray(env, view, &is_ta) != napi_ok || !is_ta) {
    napi_throw_type_error(env, NULL, "futex: first argument must be an Int32Array or Uint32Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length, byte_offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, view, &type, &length, &data, &ab, &byte_offset) != napi_ok) {
    napi_throw_error(env, NULL, "futex: napi_get_typedarray_info failed");
    return NULL;
  }
  if (type != napi_int32_array && type != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "futex: the view must be an Int32Array or Uint32Array");
    return NULL;
  }
  int64_t index;
  if (napi_get_value_int64(env, index_val, &index) != napi_ok || index < 0 || (size_t)index >= length) {
    napi_throw_range_error(env, NULL, "futex: index out of range of the view");
    return NULL;
  }
  /* data already includes the view's byte offset. */
  return (int32_t *)data + index;
}

static int do_futex_wait(int32_t *addr, int32_t expected, double timeout_ms) {
  struct timespec ts, *tsp = NULL;
  if (timeout_ms >= 0) {
    ts.tv_sec = (time_t)(timeout_ms / 1000);
    ts.tv_nsec = (long)((timeout_ms - (double)ts.tv_sec * 1000) * 1e6);
    tsp = &ts;
  }
  for (;;) {
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (r == 0) return 0;
    if (errno == EAGAIN) return 1;
    if (errno == ETIMEDOUT) return 2;
    if (errno == EINTR) return 0; /* a signal: report a wake-up; callers re-check their condition */
    return -errno;
  }
}

static napi_value shm_futex_wait(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "futexWait(view, index, expected, timeoutMs) needs 4 arguments");
    return NULL;
  }
  int32_t *addr = word_address(env, argv[0], argv[1]);
  if (!addr) return NULL;
  int32_t expected;
  double timeout;
  CHECK(env, napi_get_value_int32(env, argv[2], &expected));
  CHECK(env, napi_get_value_double(env, argv[3], &timeout));
  int r = do_futex_wait(addr, expected, timeout);
  if (r < 0) return throw_errno(env, "futex wait", -r);
  napi_value out;
  CHECK(env, napi_create_int32(env, r, &out));
  return out;
}

static napi_value shm_futex_wake(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "futexWake(view, index, count) needs 3 arguments");
    return NULL;
  }
  int32_t *addr = word_address(env, argv[0], argv[1]);
  if (!addr) return NULL;
  int32_t count;
  CHECK(env, napi_get_value_int32(env, argv[2], &count));
  if (count <= 0) count = INT_MAX;
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
  if (r < 0) return throw_errno(env, "futex wake", errno);
  napi_value out;
  CHECK(env, napi_create_int32(env, (int32_t)r, &out));
  return out;
}

/* futexWaitAsync: the same wait on a libuv pool thread, so an event-loop process (xenstored,
 * dom0's backends) can sleep on a doorbell without blocking its loop. The view is kept alive by a
 * reference until the wait completes. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref view_ref;
  int32_t *addr;
  int32_t expected;
  double timeout;
  int result;
} async_wait_t;

static void async_wait_execute(napi_env env, void *data) {
  (void)env;
  async_wait_t *w = data;
  w->result = do_futex_wait(w->addr, w->expected, w->timeout);
}

static void async_wait_complete(napi_env env, napi_status status, void *data) {
  async_wait_t *w = data;
  napi_value out;
  if (status != napi_ok || w->result < 0) {
    napi_value msg;
    napi_create_string_utf8(env, "xenlab_shm: futexWaitAsync failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &out);
    napi_reject_deferred(env, w->deferred, out);
  } else {
    napi_create_int32(env, w->result, &out);
    napi_resolve_deferred(env, w->deferred, out);
  }
  napi_delete_reference(env, w->view_ref);
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value shm_futex_wait_async(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "futexWaitAsync(view, index, expected, timeoutMs) needs 4 arguments");
    return NULL;
  }
  int32_t *addr = word_address(env, argv[0], argv[1]);
  if (!addr) return NULL;
  async_wait_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "calloc", ENOMEM);
  w->addr = addr;
  CHECK(env, napi_get_value_int32(env, argv[2], &w->expected));
  CHECK(env, napi_get_value_double(env, argv[3], &w->timeout));
  CHECK(env, napi_create_reference(env, argv[0], 1, &w->view_ref));
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &w->deferred, &promise));
  CHECK(env, napi_create_string_utf8(env, "xenlab_futex_wait", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(env, NULL, name, async_wait_execute, async_wait_complete, w, &w->work));
  CHECK(env, napi_queue_async_work(env, w->work));
  return promise;
}

/* schedYield(): sched_yield(2). A process that polls shared memory calls it between looks, so
 * a peer that is runnable on the same core (the machine has two, shared by every process of a
 * host) gets the core instead of waiting for the poller's time slice to end. */
static napi_value shm_sched_yield(napi_env env, napi_callback_info info) {
  (void)info;
  sched_yield();
  napi_value undef;
  napi_get_undefined(env, &undef);
  return undef;
}

/* preadv(fd, buffer, iov, count, position) / pwritev(...): one vectored read or write between
 * a file and `count` ranges of one ArrayBuffer, the ranges given as (byteOffset, length) pairs in
 * the Float64Array `iov`; returns the bytes moved. blkback's hot path serves a run of requests
 * whose pages all live in the machine-memory mapping with one call, without a typed-array view
 * per range or Node's fs layer around the system call (fs.readSync costs ~0.3 us more per call).
 * Every range is checked against the buffer; a bad one throws RangeError before any I/O. */
#define VEC_MAX 1024
static napi_value vec_io(napi_env env, napi_callback_info info, int write) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "preadv/pwritev(fd, buffer, iov, count, position) needs 5 arguments");
    return NULL;
  }
  int32_t fd, count;
  double position;
  void *base;
  size_t size;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (napi_get_arraybuffer_info(env, argv[1], &base, &size) != napi_ok) {
    napi_throw_type_error(env, NULL, "preadv/pwritev: buffer must be an ArrayBuffer");
    return NULL;
  }
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "preadv/pwritev: iov must be a Float64Array of (offset, length) pairs");
    return NULL;
  }
  CHECK(env, napi_get_value_int32(env, argv[3], &count));
  CHECK(env, napi_get_value_double(env, argv[4], &position));
  if (count < 1 || count > VEC_MAX || (size_t)count * 2 > len || !(position >= 0) || position > 9007199254740991.0) {
    napi_throw_range_error(env, NULL, "preadv/pwritev: count must be 1..1024 pairs of iov, position a non-negative integer");
    return NULL;
  }
  const double *pairs = data;
  struct iovec iov[VEC_MAX];
  for (int i = 0; i < count; i++) {
    double off = pairs[2 * i], n = pairs[2 * i + 1];
    if (!(off >= 0) || !(n >= 0) || off + n > (double)size) {
      napi_throw_range_error(env, NULL, "preadv/pwritev: a range lies outside the buffer");
      return NULL;
    }
    iov[i].iov_base = (uint8_t *)base + (size_t)off;
    iov[i].iov_len = (size_t)n;
  }
  ssize_t r;
  do r = write ? pwritev(fd, iov, count, (off_t)position) : preadv(fd, iov, count, (off_t)position);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, write ? "pwritev" : "preadv", errno);
  napi_value out;
  CHECK(env, napi_create_double(env, (double)r, &out));
  return out;
}
static napi_value shm_preadv(napi_env env, napi_callback_info info) { return vec_io(env, info, 0); }
static napi_value shm_pwritev(napi_env env, napi_callback_info info) { return vec_io(env, info, 1); }

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"map", NULL, shm_map, NULL, NULL, NULL, napi_default, NULL},
      {"unmap", NULL, shm_unmap, NULL, NULL, NULL, napi_default, NULL},
      {"futexWait", NULL, shm_futex_wait, NULL, NULL, NULL, napi_default, NULL},
      {"futexWake", NULL, shm_futex_wake, NULL, NULL, NULL, napi_default, NULL},
      {"futexWaitAsync", NULL, shm_futex_wait_async, NULL, NULL, NULL, napi_default, NULL},
      {"schedYield", NULL, shm_sched_yield, NULL, NULL, NULL, napi_default, NULL},
      {"preadv", NULL, shm_preadv, NULL, NULL, NULL, napi_default, NULL},
      {"pwritev", NULL, shm_pwritev, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
