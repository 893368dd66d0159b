/* The kernel table: filled once (pthread_once) with the scalar kernels, then
 * overridden in ascending ISA order up to the chosen ISA, so a kernel an ISA
 * lacks falls back to the next lower one. Read-only afterwards. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_features.h"
#include "internal.h"
#include "kernels.h"

#define BALM_NAME_ENTRY(name, ret, params) #name,
const char *const balm_kernel_names[] = {BALM_KERNEL_LIST(BALM_NAME_ENTRY)};
#undef BALM_NAME_ENTRY
const size_t balm_kernel_count = sizeof balm_kernel_names / sizeof balm_kernel_names[0];

static const char *const isa_names[BALM_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *balm_isa_name(balm_isa isa)
{
    return (unsigned)isa < BALM_ISA_COUNT ? isa_names[isa] : NULL;
}

balm_status balm_isa_from_name(const char *name, balm_isa *isa)
{
    if (!name || !isa)
        return balm_fail(BALM_ERR_NULL, "balm_isa_from_name: NULL argument");
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        const char *a = name, *b = isa_names[i];
        while (*a && *b && tolower((unsigned char)*a) == *b)
            a++, b++;
        if (!*a && !*b) {
            *isa = (balm_isa)i;
            return BALM_OK;
        }
    }
    return balm_fail(BALM_ERR_ISA, "unknown ISA '%s' (expected scalar, avx2, avx512 or neon)",
                     name);
}

/* Whether this build compiled kernels for the ISA. */
int balm_isa_built(balm_isa isa)
{
    switch (isa) {
    case BALM_ISA_SCALAR: return 1;
#ifdef BALM_HAVE_AVX2
    case BALM_ISA_AVX2: return 1;
#endif
#ifdef BALM_HAVE_AVX512
    case BALM_ISA_AVX512: return 1;
#endif
#ifdef BALM_HAVE_NEON
    case BALM_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

/* Position of an ISA in this architecture's ascending order; -1 if it is of
 * another architecture. */
static int isa_rank(balm_isa isa)
{
    switch (isa) {
    case BALM_ISA_SCALAR: return 0;
#if defined(__x86_64__) || defined(__i386__)
    case BALM_ISA_AVX2: return 1;
    case BALM_ISA_AVX512: return 2;
#elif defined(__aarch64__)
    case BALM_ISA_NEON: return 1;
#endif
    default: return -1;
    }
}

int balm_isa_supported(balm_isa isa)
{
    if ((unsigned)isa >= BALM_ISA_COUNT || !balm_isa_built(isa) || isa_rank(isa) < 0)
        return 0;
    balm_cpu_info info;
    balm_cpu_detect(&info);
#ifdef BALM_AVX512_EMULATED
    /* SIMDe test build: the AVX-512 kernels are AVX2 code underneath. */
    if (isa == BALM_ISA_AVX512)
        return balm_cpu_can_run(&info, BALM_ISA_AVX2);
#endif
    return balm_cpu_can_run(&info, isa);
}

static void apply_isa(balm_kernels *t, balm_isa isa)
{
    switch (isa) {
    case BALM_ISA_SCALAR: {
#define BALM_FILL_SCALAR(name, ret, params) t->name = balm_##name##_f32_scalar;
        BALM_KERNEL_LIST(BALM_FILL_SCALAR)
#undef BALM_FILL_SCALAR
        break;
    }
#ifdef BALM_HAVE_AVX2
    case BALM_ISA_AVX2: {
#define BALM_FILL(name) t->name = balm_##name##_f32_avx2;
        BALM_KERNELS_AVX2(BALM_FILL)
#undef BALM_FILL
        break;
    }
#endif
#ifdef BALM_HAVE_AVX512
    case BALM_ISA_AVX512: {
#define BALM_FILL(name) t->name = balm_##name##_f32_avx512;
        BALM_KERNELS_AVX512(BALM_FILL)
#undef BALM_FILL
        break;
    }
#endif
#ifdef BALM_HAVE_NEON
    case BALM_ISA_NEON: {
#define BALM_FILL(name) t->name = balm_##name##_f32_neon;
        BALM_KERNELS_NEON(BALM_FILL)
#undef BALM_FILL
        break;
    }
#endif
    default: break;
    }
    (void)t;
}

int balm_kernels_for_isa(balm_isa isa, balm_kernels *out)
{
    if (!out || !balm_isa_supported(isa))
        return 0;
    balm_kernels t;
    int target = isa_rank(isa);
    for (int r = 0; r <= target; r++)
        for (int i = 0; i < BALM_ISA_COUNT; i++)
            if (isa_rank((balm_isa)i) == r && balm_isa_supported((balm_isa)i))
                apply_isa(&t, (balm_isa)i);
    *out = t;
    return 1;
}

/* ---------------------------------------------------------- the chosen ISA */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int initialised;
static int api_cap = -1; /* set by balm_isa_set_cap before init */
static balm_kernels active_table;
static balm_isa active_isa;
static char active_reason[96];

static balm_isa best_up_to(int cap_rank)
{
    balm_isa best = BALM_ISA_SCALAR;
    for (int i = 0; i < BALM_ISA_COUNT; i++) {
        int r = isa_rank((balm_isa)i);
        if (r >= 0 && r <= cap_rank && r > isa_rank(best) && balm_isa_supported((balm_isa)i))
            best = (balm_isa)i;
    }
    return best;
}

static void init_dispatch(void)
{
    pthread_mutex_lock(&cap_lock);
    int cap_rank = 1 << 20;
    const char *why = "best detected";
    char buf[64];
    if (api_cap >= 0) {
        cap_rank = isa_rank((balm_isa)api_cap) < 0 ? 0 : isa_rank((balm_isa)api_cap);
        snprintf(buf, sizeof buf, "capped by balm_isa_set_cap(%s)", isa_names[api_cap]);
        why = buf;
    } else {
        const char *env = getenv("BALM_ISA");
        if (env && *env) {
            balm_isa e;
            if (balm_isa_from_name(env, &e) == BALM_OK) {
                cap_rank = isa_rank(e) < 0 ? 0 : isa_rank(e);
                snprintf(buf, sizeof buf, "capped by BALM_ISA=%s", isa_names[e]);
                why = buf;
            } else {
                /* Reported once (this runs once); the cap is then ignored. */
                fprintf(stderr,
                        "libbalm: ignoring unknown BALM_ISA='%s' (expected scalar, avx2, "
                        "avx512 or neon)\n",
                        env);
                why = "best detected (BALM_ISA value unknown, ignored)";
            }
        }
    }
    active_isa = best_up_to(cap_rank);
    balm_kernels_for_isa(active_isa, &active_table);
    snprintf(active_reason, sizeof active_reason, "%s", why);
    atomic_store(&initialised, 1);
    pthread_mutex_unlock(&cap_lock);
}

const balm_kernels *balm_kernels_active(void)
{
    pthread_once(&init_once, init_dispatch);
    return &active_table;
}

balm_isa balm_isa_active(void)
{
    pthread_once(&init_once, init_dispatch);
    return active_isa;
}

const char *balm_isa_reason(void)
{
    pthread_once(&init_once, init_dispatch);
    return active_reason;
}

balm_status balm_isa_set_cap(balm_isa cap)
{
    if ((unsigned)cap >= BALM_ISA_COUNT)
        return balm_fail(BALM_ERR_ISA, "balm_isa_set_cap: unknown ISA value %d", (int)cap);
    pthread_mutex_lock(&cap_lock);
    balm_status st = BALM_OK;
    if (atomic_load(&initialised))
        st = balm_fail(BALM_ERR_STATE,
                       "balm_isa_set_cap(%s): dispatch already initialised (ISA %s in use); "
                       "set the cap before the first kernel call",
                       isa_names[cap], isa_names[active_isa]);
    else if (api_cap >= 0)
        st = balm_fail(BALM_ERR_STATE, "balm_isa_set_cap(%s): cap already set to %s",
                       isa_names[cap], isa_names[api_cap]);
    else
        api_cap = (int)cap;
    pthread_mutex_unlock(&cap_lock);
    return st;
}
