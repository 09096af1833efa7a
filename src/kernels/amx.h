/* kernels/amx.h - internal: the one AMX tile configuration of the kernels (bf16_amx.c's TDPBF16PS table and
 * int8_avx512.c's TDPBUSD path): palette 1, the 8 tiles tmm0-7 each 16 rows x 64 bytes. The tile state is per
 * thread, so a kernel loads it at the start of each call that uses tiles (ldtilecfg is cheap next to the tile
 * products of a call). x86 only; callers compile with amx-tile (flags or a target attribute), and the CPU check
 * and the tile permission are dispatch.c's (et_kern_amx_ok). */
#ifndef ET_KERNELS_AMX_H
#define ET_KERNELS_AMX_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* LDTILECFG's 64-byte memory operand */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} et_amx_tile_config;

/* ldtilecfg: palette 1, tiles 0-7 of 16 rows x 64 bytes (inline: callers are AMX kernels) */
static inline __attribute__((always_inline, target("amx-tile"))) void et_amx_config_tiles(void) {
    et_amx_tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) {
        c.colsb[t] = 64;
        c.rows[t] = 16;
    }
    _tile_loadconfig(&c);
}

#endif
#endif
