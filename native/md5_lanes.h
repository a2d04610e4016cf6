// MD5 compression of up to eight independent messages at once, one per 32-bit SIMD lane (native/md5_lanes.c).
#ifndef COFFER_MD5_LANES_H
#define COFFER_MD5_LANES_H

#include <stddef.h>
#include <stdint.h>

#define MD5_LANES 8

typedef enum {
  MD5_LANES_NONE = 0,     // no SIMD kernel on this CPU: hash lane by lane
  MD5_LANES_AVX2 = 1,     // 8 lanes in ymm registers
  MD5_LANES_AVX512VL = 2, // the same with vprold and vpternlogd (a shorter chain per step)
} md5_lanes_kind;

/** The best kernel this CPU and OS support (CPUID, and XGETBV for the saved register state). */
md5_lanes_kind md5_lanes_detect(void);

/**
 * Run `blocks` 64-byte blocks of each lane through MD5's compression function. `state` is the four chaining
 * words transposed: state[w * MD5_LANES + lane] is word w (A, B, C, D) of that lane. `data[lane]` points at
 * that lane's blocks (blocks × 64 readable bytes); every lane must have a pointer (repeat one for unused
 * lanes and ignore their state).
 */
void md5_lanes_compress(md5_lanes_kind kind, uint32_t state[4 * MD5_LANES], const uint8_t *const data[MD5_LANES], size_t blocks);

#endif
