/* libFuzzer harness: `balm check`'s case parser and the case runners, fed a
 * whole case folder built from one input. The input is a small archive:
 *
 *   <case.txt bytes>
 *   \n@@ <name>\n<bytes of name.npy>
 *   \n@@ <name>\n<bytes ...>
 *
 * Names are 1..24 characters of [a-z0-9_]; other sections are dropped. The
 * folder is emptied before each input. balm_cmd_check is called in-process
 * exactly as `balm check DIR` would; its exit status must be 0, 1 or 2. */
#include "fuzz_util.h"
#include "commands.h"

#define MAX_FILES 48
static const char SEP[] = "\n@@ ";

static char written[MAX_FILES][64];
static int nwritten;

static void clean(void)
{
    char path[512];
    for (int i = 0; i < nwritten; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir(), written[i]);
        unlink(path);
    }
    nwritten = 0;
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
    size_t k = sizeof SEP - 1;
    for (; (size_t)(end - p) >= k; p++)
        if (memcmp(p, SEP, k) == 0)
            return p;
    return end;
}

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    if (nwritten == MAX_FILES)
        return;
    for (int i = 0; i < nwritten; i++)
        if (strcmp(written[i], name) == 0)
            return; /* the first section of a name wins */
    snprintf(written[nwritten], sizeof written[0], "%s", name);
    nwritten++;
    fuzz_write(name, p, n, path, sizeof path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    clean();
    const uint8_t *p = find_sep(data, end);
    put("case.txt", data, (size_t)(p - data));
    while (p < end) {
        p += sizeof SEP - 1;
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        int ok = len >= 1 && len <= 24;
        for (size_t i = 0; ok && i < len; i++)
            ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
        const uint8_t *body = nl + 1, *next = find_sep(body, end);
        if (ok) {
            char name[64];
            memcpy(name, p, len);
            memcpy(name + len, ".npy", 5);
            put(name, body, (size_t)(next - body));
        }
        p = next;
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s", fuzz_dir());
    char *argv[] = {"check", dir, NULL};
    int rc = balm_cmd_check(2, argv);
    if (rc < 0 || rc > 2)
        abort();
    return 0;
}
