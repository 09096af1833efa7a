#!/usr/bin/env python3
"""Generate src/unicode_tables.h for the WordPiece tokenizer (src/tokenizer.c) and the byte-level BPE one (src/bpe.c).

Run:  /usr/bin/python3 tools/gen_unicode_tables.py > src/unicode_tables.h
(any CPython works; the Unicode version of its `unicodedata` is written into the header and the
tokenizer follows exactly that version - Python 3.11 ships Unicode 14.0.0.)

What Hugging Face's BertTokenizer (uncased) needs per code point, all from Python's own
`unicodedata` / `str` methods so the C code reproduces Python's behaviour:

  ET_UC_DROP   removed by _clean_text: U+0000, U+FFFD, and every category C* (Cc Cf Cn Co Cs)
               except \\t \\n \\r  (note: Cn = unassigned in this Unicode version, Co = private use)
  ET_UC_WS     a word boundary: _is_whitespace (' ', \\t, \\n, \\r, Zs) or str.isspace() (str.split()
               also splits on U+2028/U+2029, which _clean_text keeps)
  ET_UC_PUNCT  _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or category P*
  ET_UC_MN     category Mn (removed by _run_strip_accents after NFD)
  ET_UC_CCC    canonical combining class > 0 (for NFD's canonical reordering)
  ET_UC_MAP    NFD(c.lower()) != c: the replacement sequence is in et_uc_map_* (Hangul syllables
               are decomposed algorithmically in C and are not in the map)
  ET_UC_NFD    NFD(c) != c (cased tokenizers that strip accents): et_uc_nfd_* (Hangul algorithmic)
  ET_UC_LOW    c.lower() != c (uncased tokenizers that keep accents): et_uc_low_*

For the byte-level BPE pre-tokenizer (src/bpe.c: GPT-2's regex as Hugging Face tokenizers runs it with
Oniguruma), a second two-level table et_uc_gc_* holds per code point:

  ET_GC_L      \\p{L}: general category Lu Ll Lt Lm Lo
  ET_GC_N      \\p{N}: general category Nd Nl No
  ET_GC_S      Oniguruma's Unicode \\s: U+0009-000D, U+0085, categories Zs Zl Zp

Flags live in a two-level table (128-code-point blocks, deduplicated). The map is a sorted key
array + offsets into a pool of code points (binary search). et_uc_mc_ccc lists the few non-Mn
characters with ccc > 0 (they survive accent stripping, so their canonical order matters).
"""
import sys
import unicodedata as ud

BS = 128
F_DROP, F_WS, F_PUNCT, F_MN, F_CCC, F_MAP, F_NFD, F_LOW = 1, 2, 4, 8, 16, 32, 64, 128
HANGUL_S0, HANGUL_S1 = 0xAC00, 0xD7A3
G_L, G_N, G_S = 1, 2, 4


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return ud.category(ch).startswith("C")


def flags(cp):
    ch = chr(cp)
    cat = ud.category(ch)
    f = 0
    if cp == 0 or cp == 0xFFFD or is_control(ch):
        f |= F_DROP
    elif ch in " \t\n\r" or cat == "Zs" or ch.isspace():
        f |= F_WS
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126) or cat.startswith("P"):
        f |= F_PUNCT
    if cat == "Mn":
        f |= F_MN
    if ud.combining(ch):
        f |= F_CCC
    # dropped / whitespace characters never reach lowercasing (e.g. U+2000 -> U+2002 is moot)
    if not (f & (F_DROP | F_WS)) and ud.normalize("NFD", ch.lower()) != ch:
        f |= F_MAP
    if not (f & (F_DROP | F_WS)) and ud.normalize("NFD", ch) != ch:
        f |= F_NFD
    if not (f & (F_DROP | F_WS)) and ch.lower() != ch:
        f |= F_LOW
    return f


def main():
    F = [flags(cp) for cp in range(0x110000)]

    # --- sanity checks the C code relies on ---------------------------------------------------
    for cp in range(0x110000):
        ch = chr(cp)
        low = ch.lower()
        assert low.lower() == low, hex(cp)  # HF lowercases twice (per char, then per word)
        for fl, out in ((F_NFD, ud.normalize("NFD", ch)), (F_LOW, low)):
            if F[cp] & fl:
                for x in out:
                    assert not (F[ord(x)] & (F_DROP | F_WS)), (hex(cp), hex(ord(x)))
                    assert not (fl == F_LOW and F[ord(x)] & F_PUNCT), hex(cp)
        if F[cp] & F_MAP:
            out = ud.normalize("NFD", low)
            assert not (F[cp] & (F_DROP | F_WS)), hex(cp)
            for x in out:
                fx = F[ord(x)]
                assert not (fx & (F_DROP | F_WS)), (hex(cp), hex(ord(x)))
        if F[cp] & F_PUNCT:
            assert ud.combining(ch) == 0, hex(cp)  # punctuation is always a starter
        if F[cp] & F_WS:
            assert ud.combining(ch) == 0 and not (F[cp] & F_MAP)
    # ASCII: only A-Z map (to a-z)
    for cp in range(128):
        assert bool(F[cp] & F_MAP) == (65 <= cp <= 90)

    # --- two-level flag table -----------------------------------------------------------------
    blocks, stage1 = {}, []
    for i in range(0, 0x110000, BS):
        b = tuple(F[i:i + BS])
        stage1.append(blocks.setdefault(b, len(blocks)))
    assert len(blocks) <= 256
    stage2 = [v for b, _ in sorted(blocks.items(), key=lambda kv: kv[1]) for v in b]

    # --- maps: lower + NFD, NFD, lower (Hangul syllables excluded from the NFD ones: algorithmic) ---
    def build(flag, fn):
        keys, offs, pool = [], [], []
        maxlen = 0
        for cp in range(0x110000):
            if not (F[cp] & flag) or (flag != F_LOW and HANGUL_S0 <= cp <= HANGUL_S1):
                continue
            out = [ord(x) for x in fn(chr(cp))]
            keys.append(cp)
            offs.append(len(pool))
            pool.extend(out)
            maxlen = max(maxlen, len(out))
        offs.append(len(pool))
        assert len(pool) < 65536
        return keys, offs, pool, maxlen

    keys, offs, pool, maxlen = build(F_MAP, lambda c: ud.normalize("NFD", c.lower()))
    nkeys, noffs, npool, nmax = build(F_NFD, lambda c: ud.normalize("NFD", c))
    lkeys, loffs, lpool, lmax = build(F_LOW, lambda c: c.lower())
    maxlen = max(maxlen, nmax, lmax)

    # --- GPT-2 pre-tokenizer classes --------------------------------------------------------------
    def gc(cp):
        cat = ud.category(chr(cp))
        g = 0
        if cat in ("Lu", "Ll", "Lt", "Lm", "Lo"):
            g |= G_L
        if cat in ("Nd", "Nl", "No"):
            g |= G_N
        if 9 <= cp <= 13 or cp == 0x85 or cat in ("Zs", "Zl", "Zp"):
            g |= G_S
        return g
    G = [gc(cp) for cp in range(0x110000)]
    gblocks, gstage1 = {}, []
    for i in range(0, 0x110000, BS):
        b = tuple(G[i:i + BS])
        gstage1.append(gblocks.setdefault(b, len(gblocks)))
    assert len(gblocks) <= 256
    gstage2 = [v for b, _ in sorted(gblocks.items(), key=lambda kv: kv[1]) for v in b]

    mc = [(cp, ud.combining(chr(cp))) for cp in range(0x110000)
          if ud.combining(chr(cp)) and ud.category(chr(cp)) != "Mn"]

    def arr(ctype, name, vals, per=32):
        lines = [f"static const {ctype} {name}[{len(vals)}] = {{"]
        for i in range(0, len(vals), per):
            lines.append(",".join(str(v) for v in vals[i:i + per]) + ",")
        lines.append("};")
        return "\n".join(lines)

    o = sys.stdout
    o.write("/* unicode_tables.h - GENERATED by tools/gen_unicode_tables.py; do not edit.\n")
    o.write(f" * Unicode {ud.unidata_version} (Python {sys.version.split()[0]} unicodedata).\n")
    o.write(" * Flags per code point + lower/NFD, NFD and lower maps for the BERT basic tokenizer; see the script. */\n")
    o.write("#ifndef ET_UNICODE_TABLES_H\n#define ET_UNICODE_TABLES_H\n\n#include <stdint.h>\n\n")
    o.write(f'#define ET_UNICODE_VERSION "{ud.unidata_version}"\n')
    o.write(f"#define ET_UC_DROP {F_DROP}\n#define ET_UC_WS {F_WS}\n#define ET_UC_PUNCT {F_PUNCT}\n")
    o.write(f"#define ET_UC_MN {F_MN}\n#define ET_UC_CCC {F_CCC}\n#define ET_UC_MAP {F_MAP}\n")
    o.write(f"#define ET_UC_NFD {F_NFD}\n#define ET_UC_LOW {F_LOW}\n")
    o.write(f"#define ET_UC_BLOCK_SHIFT {BS.bit_length() - 1}\n")
    o.write(f"#define ET_UC_MAP_MAXLEN {maxlen}\n#define ET_UC_MAP_COUNT {len(keys)}\n\n")
    o.write(arr("uint8_t", "et_uc_stage1", stage1) + "\n\n")
    o.write(arr("uint8_t", "et_uc_stage2", stage2) + "\n\n")
    o.write(arr("uint32_t", "et_uc_map_keys", keys, 16) + "\n\n")
    o.write(arr("uint16_t", "et_uc_map_offs", offs, 24) + "\n\n")
    o.write(arr("uint32_t", "et_uc_map_pool", pool, 16) + "\n\n")
    o.write(f"#define ET_UC_NFD_COUNT {len(nkeys)}\n")
    o.write(arr("uint32_t", "et_uc_nfd_keys", nkeys, 16) + "\n\n")
    o.write(arr("uint16_t", "et_uc_nfd_offs", noffs, 24) + "\n\n")
    o.write(arr("uint32_t", "et_uc_nfd_pool", npool, 16) + "\n\n")
    o.write(f"#define ET_UC_LOW_COUNT {len(lkeys)}\n")
    o.write(arr("uint32_t", "et_uc_low_keys", lkeys, 16) + "\n\n")
    o.write(arr("uint16_t", "et_uc_low_offs", loffs, 24) + "\n\n")
    o.write(arr("uint32_t", "et_uc_low_pool", lpool, 16) + "\n\n")
    o.write(f"#define ET_UC_MC_COUNT {len(mc)}\n")
    o.write(arr("uint32_t", "et_uc_mc_cp", [c for c, _ in mc], 16) + "\n")
    o.write(arr("uint8_t", "et_uc_mc_ccc", [c for _, c in mc], 32) + "\n\n")
    o.write("/* GPT-2 pre-tokenizer classes (byte-level BPE): \\p{L}, \\p{N}, Oniguruma's \\s */\n")
    o.write(f"#define ET_GC_L {G_L}\n#define ET_GC_N {G_N}\n#define ET_GC_S {G_S}\n")
    o.write(arr("uint8_t", "et_uc_gc_stage1", gstage1) + "\n\n")
    o.write(arr("uint8_t", "et_uc_gc_stage2", gstage2) + "\n\n")
    o.write("#endif\n")


if __name__ == "__main__":
    main()
