/* A tiny program built against an installed libbalm (CMake package and
 * pkg-config): pools a 2-step sequence and prints the active ISA. */
#include <stdio.h>
#include <balm/balm.h>

int main(void)
{
    float x[4] = {1, 2, 3, 4}, m[2] = {1, 1}, s[2];
    balm_seq L = balm_seq_tbd(2, 1, 2);
    if (balm_pool_fwd(&L, x, m, s) != BALM_OK || s[0] != 2.0f || s[1] != 3.0f) {
        fprintf(stderr, "consumer: wrong result: %s\n", balm_last_error());
        return 1;
    }
    printf("consumer ok: libbalm %s, isa %s\n", balm_version(), balm_isa_name(balm_isa_active()));
    return 0;
}
