/* Counter-based random numbers shared by every ISA: Philox4x32-10 (Salmon et
 * al., SC'11) keyed by the caller's 64-bit seed. Element index k uses block
 * k/4, lane k%4, so the stream never depends on the ISA, on how the caller
 * chunks a tensor or on the number of threads. */
#ifndef BALM_PHILOX_H
#define BALM_PHILOX_H

#include <stdint.h>

#define BALM_PHILOX_M0 0xD2511F53u
#define BALM_PHILOX_M1 0xCD9E8D57u
#define BALM_PHILOX_W0 0x9E3779B9u
#define BALM_PHILOX_W1 0xBB67AE85u

/* Four 32-bit outputs of block `block` under key `seed`. */
static inline void balm_philox4x32_10(uint64_t seed, uint64_t block, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)BALM_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)BALM_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += BALM_PHILOX_W0;
        k1 += BALM_PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The ten round keys of a seed, for SIMD variants that run many blocks
 * under one key (the scalar function above bumps them as it goes). */
typedef struct {
    uint32_t k0[10], k1[10];
} balm_philox_keys;

static inline void balm_philox_schedule(uint64_t seed, balm_philox_keys *K)
{
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int i = 0; i < 10; i++) {
        K->k0[i] = k0;
        K->k1[i] = k1;
        k0 += BALM_PHILOX_W0;
        k1 += BALM_PHILOX_W1;
    }
}

/* A 32-bit output to a uniform in (0, 1): (2j+1) / 2^24 with j the top 23
 * bits, exact in float, never 0 or 1, symmetric about 1/2. */
static inline float balm_u32_to_uniform(uint32_t r)
{
    return (float)((r >> 9) * 2u + 1u) * (1.0f / 16777216.0f);
}

/* Box-Muller on the pairs (u0, u1) and (u2, u3) of one block:
 * n0 = R0 cos(2 pi u1), n1 = R0 sin(2 pi u1), R0 = sqrt(-2 ln u0); n2, n3 the
 * same from (u2, u3). SIMD variants follow these formulas exactly with their
 * own vector log/sin/cos (a few ulp apart). */
#define BALM_TWO_PI 6.283185307179586

#endif
