/* Status strings and the thread-local detailed error message. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char balm_errbuf[512];

const char *balm_version(void)
{
    return "0.1.0";
}

const char *balm_status_str(balm_status s)
{
    switch (s) {
    case BALM_OK: return "success";
    case BALM_ERR_NULL: return "a required pointer is NULL";
    case BALM_ERR_SIZE: return "size out of range or overflowing";
    case BALM_ERR_STRIDE: return "stride is zero or makes rows overlap";
    case BALM_ERR_MASK: return "mask value is neither 0 nor 1";
    case BALM_ERR_ARG: return "invalid argument";
    case BALM_ERR_NONFINITE: return "non-finite value where a finite one is required";
    case BALM_ERR_ISA: return "ISA unknown or not supported";
    case BALM_ERR_IO: return "input/output error";
    case BALM_ERR_FORMAT: return "malformed or truncated file";
    case BALM_ERR_NOMEM: return "out of memory";
    case BALM_ERR_STATE: return "call out of order";
    case BALM_ERR_UNSUPPORTED: return "not supported by this build";
    }
    return "unknown status";
}

const char *balm_last_error(void)
{
    return balm_errbuf;
}

balm_status balm_fail(balm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(balm_errbuf, sizeof balm_errbuf, fmt, ap);
    va_end(ap);
    return s;
}
