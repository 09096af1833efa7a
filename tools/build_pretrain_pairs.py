#!/usr/bin/env python3
"""Build the (query, positive) pretraining pool for embedtune's bundled compact model.

Every source is fetched through Debian's own package registry on a stock Debian 12 machine, with NOTHING installed
system-wide (a private apt list/cache directory under OUT/cache; packages are downloaded and unpacked with
`dpkg-deb -x`, never installed):

  debian  apt's Translation-en of bookworm main (+ contrib/non-free if configured): package short description (query)
          -> long description (positive). De-duplicated on the long description; very short ones dropped.
  wn      dict-wn (WordNet 3.0, dictd format): headword -> its first senses' glosses (POS tags, sense numbers,
          quoted example sentences and [syn: ...] lists removed).
  gcide   dict-gcide (Webster 1913 + later additions, dictd format): headword (cut at the pronunciation's first `\\`)
          -> its first senses (etymology, citations, quotations, usage tags and markup removed).
  stsb    optional (--stsb PATH): STS-B *train* pairs with score >= 4 (never dev/test, nothing else from eval-data).

NEVER used (reserved for the project's independent evaluation): man pages, the FAQ documents Debian packages ship,
the Jargon File (dict-jargon) and FOLDOC (dict-foldoc). A guard refuses them if they are asked for.

Output (deterministic for a given mirror state and --seed):
  OUT/pairs.jsonl     {"query","positive","source"} per line, shuffled with --seed
  OUT/dev.jsonl       held-out ~1% per source (chosen by a hash of the normalised query, so the same headword is held
                      out from wn and gcide alike), sorted by source
  OUT/manifest.json   counts per source, input package versions / index dates, sha256 of the outputs
  OUT/cache/          apt lists, .debs, unpacked dictd files (re-runs reuse them; --refresh re-fetches)

Python 3 standard library only. Run as root (or any user; apt sandboxing needs root only for its _apt user):
  python3 tools/build_pretrain_pairs.py --out /work/pretrain [--stsb ../shared/eval-data/stsb/train.jsonl]
"""
import argparse
import base64
import glob
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time

MAX_POS_CHARS = 1000
MAX_QUERY_CHARS = 200
DEV_PERCENT = 1

# ---------------------------------------------------------------------------------------------------------------------
# guard: sources reserved for evaluation


DENY_PATTERNS = [
    (re.compile(r"jargon", re.I), "the Jargon File (dict-jargon)"),
    (re.compile(r"foldoc", re.I), "FOLDOC (dict-foldoc)"),
    (re.compile(r"(^|[-_/.])faqs?($|[-_/.])|faq", re.I), "FAQ documents shipped in Debian packages"),
    (re.compile(r"(^|[-_/])man(pages?|-db)?($|[-_/.])|manpages|/man/|(^|[-_/.])man[1-9]", re.I), "man pages"),
]
ALLOWED_DICT_PACKAGES = {"dict-wn", "dict-gcide"}


def die(msg):
    sys.stderr.write("build_pretrain_pairs: error: " + msg + "\n")
    sys.exit(2)


def guard_name(name, what):
    """Refuse anything that names an evaluation-reserved source."""
    for pat, label in DENY_PATTERNS:
        if pat.search(name):
            die(f"refusing {what} '{name}': it looks like {label}, which the project reserves for its "
                "independent evaluation; never train on it")


def guard_stsb(path):
    """Only STS-B train may come from the evaluation data."""
    guard_name(path, "--stsb file")
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if os.path.basename(real) != "train.jsonl":
        die(f"refusing --stsb '{path}': only the STS-B *train* split (train.jsonl) may be used for training")
    if "eval-data" in parts and parts[-2:] != ["stsb", "train.jsonl"]:
        die(f"refusing --stsb '{path}': nothing from eval-data except stsb/train.jsonl may be used for training")
    return real


# ---------------------------------------------------------------------------------------------------------------------
# text helpers


WS = re.compile(r"\s+")


def squash(s):
    return WS.sub(" ", s).strip()


def cap(s, n):
    """Cut s to at most n chars at a sentence end if one is in the last half, else at a word boundary."""
    if len(s) <= n:
        return s
    cut = s[:n]
    for sep in (". ", "; ", "! ", "? "):
        i = cut.rfind(sep)
        if i >= n // 2:
            return cut[:i + 1]
    i = cut.rfind(" ")
    return (cut[:i] if i > 0 else cut).rstrip(" ,;:")


def norm_key(s):
    return squash(s).lower()


def run(cmd, what, capture=True):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
    except FileNotFoundError:
        die(f"{what}: '{cmd[0]}' not found (this tool needs Debian's apt and dpkg)")
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        die(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{err}")
    return p


# ---------------------------------------------------------------------------------------------------------------------
# apt plumbing (private state; nothing system-wide is touched)


def apt_opts(cache):
    return ["-o", "Dir::State::Lists=" + os.path.join(cache, "apt-lists"),
            "-o", "Dir::Cache=" + os.path.join(cache, "apt-cache"),
            "-o", "Dir::Cache::archives=" + os.path.join(cache, "apt-cache", "archives"),
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "-o", "Acquire::Languages=en",
            "-o", "Debug::NoLocking=" + ("false" if os.geteuid() == 0 else "true")]


def translation_files(cache):
    return sorted(f for f in glob.glob(os.path.join(cache, "apt-lists", "*_i18n_Translation-en*"))
                  if not f.endswith(".diff") and "partial" not in f)


def apt_update(cache, refresh):
    for d in ("apt-lists/partial", "apt-cache/archives/partial"):
        os.makedirs(os.path.join(cache, d), exist_ok=True)
    if translation_files(cache) and not refresh:
        print("  apt lists: cached", flush=True)
        return
    # no --error-on=any: an unreachable third-party source must not stop us if Debian's own indexes arrived
    cmd = ["apt-get", "-q"] + apt_opts(cache) + ["update"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = (p.stderr + p.stdout).decode("utf-8", "replace").strip()
    if p.returncode != 0 or not translation_files(cache):
        die("apt-get update could not reach the Debian package registry (or it served no Translation-en index).\n"
            "Check /etc/apt/sources.list(.d) and the network or proxy; the command was:\n  " + " ".join(cmd) +
            "\napt said:\n" + err[-3000:])
    warn = [ln for ln in err.split("\n") if ln.startswith(("W:", "E:"))]
    if warn:
        print("  apt warnings (indexes that did arrive are used; with --refresh, failed ones stay as cached):\n    "
              + "\n    ".join(warn[:6]), flush=True)
    print("  apt lists: updated", flush=True)


def release_date(cache, fname):
    """The Date: of the InRelease file that an index file came from (for the manifest)."""
    base = os.path.basename(fname)
    m = re.match(r"(.*_dists_[^_]+)_", base)
    if not m:
        return None
    for cand in (m.group(1) + "_InRelease", m.group(1) + "_Release"):
        p = os.path.join(cache, "apt-lists", cand)
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Date:"):
                        return line[5:].strip()
    return None


def fetch_debs(cache, pkgs, refresh):
    """apt-get download PKG (no install) + dpkg-deb -x into cache/unpacked/PKG. Returns {pkg: (dir, version)}."""
    debdir = os.path.join(cache, "debs")
    os.makedirs(debdir, exist_ok=True)
    out = {}
    for pkg in pkgs:
        guard_name(pkg, "package")
        debs = sorted(glob.glob(os.path.join(debdir, pkg + "_*.deb")))
        if not debs or refresh:
            for d in debs:
                os.remove(d)
            cmd = ["apt-get", "-q"] + apt_opts(cache) + ["download", pkg]
            p = subprocess.run(cmd, cwd=debdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            debs = sorted(glob.glob(os.path.join(debdir, pkg + "_*.deb")))
            if p.returncode != 0 or not debs:
                die(f"apt-get download {pkg} failed (is the Debian registry reachable?):\n" +
                    (p.stderr + p.stdout).decode("utf-8", "replace").strip()[-2000:])
        deb = debs[-1]
        version = run(["dpkg-deb", "-f", deb, "Version"], "dpkg-deb -f").stdout.decode().strip()
        dest = os.path.join(cache, "unpacked", pkg)
        stamp = os.path.join(dest, ".from")
        if not (os.path.exists(stamp) and open(stamp).read() == os.path.basename(deb)):
            os.makedirs(dest, exist_ok=True)
            run(["dpkg-deb", "-x", deb, dest], "dpkg-deb -x " + os.path.basename(deb))
            with open(stamp, "w") as f:
                f.write(os.path.basename(deb))
        print(f"  {pkg} {version}", flush=True)
        out[pkg] = (dest, version)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# source 1: Debian package descriptions


def parse_translation(text):
    """Yield (package, short, long) from a Translation-en file."""
    for stanza in text.split("\n\n"):
        pkg, short, body, in_desc = None, None, [], False
        for line in stanza.split("\n"):
            if line.startswith("Package:"):
                pkg = line[8:].strip()
                in_desc = False
            elif line.startswith("Description-en:"):
                short = line[15:].strip()
                in_desc = True
            elif in_desc and line.startswith(" "):
                body.append(line[1:])
            else:
                in_desc = False
        if pkg and short:
            yield pkg, short, body


def debian_long_text(body):
    paras, cur = [], []
    for line in body:
        if line.strip() == ".":
            if cur:
                paras.append(" ".join(cur))
            cur = []
        else:
            cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    return squash(" ".join(paras))


def source_debian(cache, codename, manifest):
    files = [f for f in translation_files(cache)
             if re.search(r"_dists_" + re.escape(codename) + r"_(main|contrib|non-free|non-free-firmware)_i18n_",
                          os.path.basename(f))]
    if not files:
        die(f"no Translation-en index for suite '{codename}' in {cache}/apt-lists; found: "
            + ", ".join(os.path.basename(f) for f in translation_files(cache)) + " (use --suite)")
    order = {"main": 0, "contrib": 1, "non-free": 2, "non-free-firmware": 3}
    files.sort(key=lambda f: order[re.search(r"_(main|contrib|non-free|non-free-firmware)_i18n_", f).group(1)])
    seen_long, n_pkgs, pairs, dropped_short, dropped_dup = set(), 0, [], 0, 0
    for f in files:
        text = run(["/usr/lib/apt/apt-helper", "cat-file", f], "apt-helper cat-file").stdout.decode("utf-8", "replace")
        manifest["inputs"].append({"file": os.path.basename(f), "release_date": release_date(cache, f),
                                   "sha256": hashlib.sha256(text.encode()).hexdigest()})
        for pkg, short, body in parse_translation(text):
            n_pkgs += 1
            long = debian_long_text(body)
            if len(long) < 60 or len(long.split()) < 8:
                dropped_short += 1
                continue
            key = norm_key(long)
            if key in seen_long:
                dropped_dup += 1
                continue
            seen_long.add(key)
            pairs.append((cap(squash(short), MAX_QUERY_CHARS), cap(long, MAX_POS_CHARS)))
    print(f"  debian: {n_pkgs} descriptions, {dropped_dup} duplicate long descriptions, "
          f"{dropped_short} too short -> {len(pairs)} pairs", flush=True)
    return pairs


# ---------------------------------------------------------------------------------------------------------------------
# dictd files


B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64num(s):
    """dictd's base64 numbers: most significant digit first."""
    v = 0
    for c in s:
        v = v * 64 + B64[c]
    return v


def dictd_entries(index_path, dict_path):
    """Yield the article text of each distinct (offset, length) in index order."""
    data = gzip.open(dict_path).read()
    seen = set()
    with open(index_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            off, ln = b64num(parts[1]), b64num(parts[2])
            if (off, ln) in seen:
                continue
            seen.add((off, ln))
            yield parts[0], data[off:off + ln].decode("utf-8", "replace")


def find_dictd(unpacked, name):
    idx = os.path.join(unpacked, "usr", "share", "dictd", name + ".index")
    dz = os.path.join(unpacked, "usr", "share", "dictd", name + ".dict.dz")
    if not (os.path.exists(idx) and os.path.exists(dz)):
        die(f"{idx} / {dz} missing: the package layout is not the expected dictd one")
    return idx, dz


def dedup_pairs(raw, name):
    """Keep the first pair per normalised positive and per normalised query; drop short positives."""
    seen_q, seen_p, out, short = set(), set(), [], 0
    for q, p in raw:
        q, p = squash(q), squash(p)
        if len(p) < 15 or len(p.split()) < 3 or not q:
            short += 1
            continue
        kq, kp = norm_key(q), norm_key(p)
        if kq in seen_q or kp in seen_p:
            continue
        seen_q.add(kq)
        seen_p.add(kp)
        out.append((cap(q, MAX_QUERY_CHARS), cap(p, MAX_POS_CHARS)))
    print(f"  {name}: {len(raw)} articles, {short} too short, {len(raw) - short - len(out)} duplicates "
          f"-> {len(out)} pairs", flush=True)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# source 2: WordNet 3.0 (dict-wn)

WN_SENSE = re.compile(r"^\s+(?:(n|v|adj|adv|s)\s+)?(\d+:|:)\s*(.*)$")
WN_BRACKET = re.compile(r"\[(?:syn|ant|also|see|pertainym|derivation|participle|attribute|entails|causes|"
                        r"verb group|similar|domain[^:]*|member[^:]*|part[^:]*|substance[^:]*|"
                        r"[a-z][a-z ]*):[^\]]*\]?", re.S)


def wn_gloss(text):
    """A WordNet sense: 'definition; "example"; "example" [syn: ...]' -> 'definition'. The examples' quotes are not
    always balanced in the source, so every ';'-segment holding a '"' is dropped."""
    text = WN_BRACKET.sub(" ", text)
    segs = [g.strip() for g in text.split(";")]
    segs = [g for g in segs if g and '"' not in g]
    text = "; ".join(segs)
    text = re.sub(r"`([^`']*)'", r"\1", text)
    text = text.replace("{", "").replace("}", "")
    return squash(text).strip(" ;,:")


def wn_parse(article, max_senses):
    lines = article.split("\n")
    head = lines[0].strip()
    senses, cur = [], None
    for line in lines[1:]:
        m = WN_SENSE.match(line)
        if m and (m.group(1) or m.group(2) != ":"):
            if cur is not None:
                senses.append(cur)
            cur = m.group(3)
        elif cur is not None:
            cur += " " + line.strip()
    if cur is not None:
        senses.append(cur)
    glosses = []
    for s in senses:
        g = wn_gloss(s)
        if g and g not in glosses:
            glosses.append(g)
        if len(glosses) >= max_senses:
            break
    return head, "; ".join(glosses)


def source_wn(unpacked, max_senses):
    idx, dz = find_dictd(unpacked, "wn")
    raw = [wn_parse(art, max_senses) for _, art in dictd_entries(idx, dz)]
    return dedup_pairs(raw, "wn")


# ---------------------------------------------------------------------------------------------------------------------
# source 3: GCIDE / Webster 1913 (dict-gcide)

GC_SPECIAL = {"ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "imac": "i", "aum": "a", "eth": "th", "th": "th",
              "ng": "ng", "root": "", "deg": " degrees", "sect": "section", "udd": "u", "asl": "a", "add": "a",
              "yogh": "y", "frac12": "1/2", "frac13": "1/3", "frac14": "1/4", "frac34": "3/4", "cced": "c",
              "hand": "", "prime": "'", "dprime": "\"", "middot": "", "times": "x", "divide": "/", "pound": "pounds",
              "ounce": "ounce", "dram": "dram", "scruple": "scruple", "minim": "minim", "ldquo": "\"", "rdquo": "\"",
              "lsquo": "'", "rsquo": "'", "mdash": " -- ", "ndash": "-", "ell": "l"}
GC_ACCENT = re.compile(r"\[([=\-^'`\"~.,*]?)([A-Za-z]{1,6})(\^?)\]")
GC_TAG_LINE = re.compile(r"^\s*\[[^\]]*\]\s*$")
GC_SOURCE_TAG = re.compile(r"\[[^\]]*(?:Webster|WordNet|PJC|Suppl|Century|\bAS\b)[^\]]*\].*$")
GC_USAGE = re.compile(r"\[(?:Obs|R|Colloq|Archaic|Scot|Slang|Poetic|Cant|Low|India|Obsoles|British|Brit|Recent|"
                      r"Informal|Obsolescent|Australia|Humorous|Jocose|Eng|U\.\s?S|Prov|Vulgar|Vulgar|Rare|"
                      r"Local|Old|Written also|Also written|Sometimes written|Formerly written|Cf|See|PJC)"
                      r"[^\]]*\]")
GC_SENSE_NUM = re.compile(r"^(?:\d+\.|\(\w\)|\d+\s)\s*")
GC_DOMAIN = re.compile(r"^\((?:[A-Z][A-Za-z]*\.?(?:\s*(?:&|and|,)?\s*[A-Z][A-Za-z]*\.?)*)\)\s*")
GC_CITE = re.compile(r"\s--[A-Z][^.]{0,40}\.(?:\s[A-Z][^.]{0,30}\.)*")
GC_XREF_ONLY = re.compile(r"(?i)^(?:See|Same as|Pl\. of|Plural of|Obs\. form of|Variant of|An obsolete form of)\b"
                          r"\s*(?:\S+\s*){0,6}$")
GC_QUOTE = re.compile(r"\"[^\"]{0,300}\"")


def gc_demarkup(s):
    def acc(m):
        pre, letters, post = m.groups()
        if letters in GC_SPECIAL:
            return GC_SPECIAL[letters]
        if (pre or post) and len(letters) <= 2:
            return letters
        return m.group(0)
    s = GC_ACCENT.sub(acc, s)
    return s


GC_HEADFORM = re.compile(r"\s*,?\s*(?:[^\s\\,;\[\]()]+(?: [^\s\\,;\[\]()]+){0,4})?\s*\\[^\\]*\\")
GC_POS = re.compile(r"\s*(?:(?:n|v|a|adv|adj|prep|conj|interj|pron|pl|sing|p|pr|imp|t|i|vb|superl|compar|pret|fem|"
                    r"masc|obj|poss|pers|inf|part|suff|pref|dat|acc|gen|nom|pred|abbrev|obs|pres|perf|Sing|Pl|prop|"
                    r"[A-Z][A-Za-z]{0,3})\.(?=[\s,;:\[({]|$)|&|,|;|:|or\b|and\b|\d+\)|\{[^{}]*\})")


def gc_balanced(t, i, open_c, close_c):
    """End index of the balanced group starting at t[i] == open_c, or -1."""
    depth = 0
    for j in range(i, len(t)):
        if t[j] == open_c:
            depth += 1
        elif t[j] == close_c:
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def gc_skip_header(t):
    """Skip headword forms with their \\pronunciations\\, (pronunciations), POS abbreviations and [etymology]."""
    i = 0
    while i < len(t):
        m = GC_HEADFORM.match(t, i) or GC_POS.match(t, i)
        if m and m.end() > i:
            i = m.end()
            continue
        j = i
        if t.startswith("Etym:", j + (len(t[j:]) - len(t[j:].lstrip()))):
            e = t.find("]", j)
            if e > 0:
                i = e + 1
                continue
        while j < len(t) and t[j].isspace():
            j += 1
        if j < len(t) and t[j] in "([":
            e = gc_balanced(t, j, t[j], ")" if t[j] == "(" else "]")
            if e > 0:
                i = e
                continue
        break
    t = t[i:]
    # an etymology whose brackets the source left unbalanced: cut after its stray closing ']'
    close, opn = t.find("]"), t.find("[")
    if 0 <= close < 400 and (opn < 0 or opn > close):
        t = t[close + 1:]
    return t.lstrip(" .,;:)")


def gc_clean_def(text):
    text = text.split("\\", 1)[0]  # a run-on entry (Dynamically \\Dy*nam"ic*al*ly\\, adv. ...) starts here
    text = re.sub(r"\s--\s*[^\s,]*[*\"`].*$", "", text)  # run-on derived forms: -- O*ward*ness, n.
    text = re.sub(r"\s?(?:WordNet 1\.5|1913 Webster|PJC)[^\]]*\]\.?", "", text)  # tags cut in two by a wrap
    text = GC_USAGE.sub(" ", text)
    text = GC_CITE.sub(" ", text)
    text = GC_QUOTE.sub(" ", text)
    text = re.sub(r"\s--\s*[A-Z][\w.&' ]{0,40}$", " ", text)
    text = text.replace("{", "").replace("}", "")
    text = re.sub(r"\[[^\]]*\]", " ", text)  # anything bracketed that is left: etymology bits, editor tags
    text = squash(text)
    for _ in range(2):
        text = GC_SENSE_NUM.sub("", text)
        text = GC_DOMAIN.sub("", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    text = re.sub(r"(\.)\s[a-z][\w-]*\.?$", r"\1", text)  # a stray next-entry headword at the end
    text = re.sub(r"(?:\bas,\s*)?[,;]?\s*(?:as,)?\s*$", "", text) if text.endswith("as,") else text
    return text.strip(" ;,:-")


def gc_parse(article, max_senses):
    """Return (headword, definition) of the first entry of an article."""
    art = gc_demarkup(article)
    paras = [p for p in re.split(r"\n\s*\n", art) if p.strip()]
    if not paras:
        return "", ""
    lines0 = paras[0].split("\n")
    if "\\" not in lines0[0]:
        return "", ""
    first = [lines0[0]]
    for ln in lines0[1:]:
        if ln.strip() and not ln[0].isspace():
            paras = [paras[0]]  # a column-0 line is the next entry's headword: stop there
            break
        first.append(ln)
    first = [GC_SOURCE_TAG.sub("", ln) for ln in first]
    first = [ln for ln in first if ln.strip() and not GC_TAG_LINE.match(ln)]
    head = first[0].split("\\", 1)[0].strip().rstrip(",")
    rest = gc_skip_header(" ".join(ln.strip() for ln in first))
    senses, last = [], False
    for p in [None] + paras[1:]:
        if last:
            break
        if p is None:
            text = rest
        else:
            lines = [GC_SOURCE_TAG.sub("", ln) for ln in p.split("\n")]
            lines = [ln for ln in lines if ln.strip() and not GC_TAG_LINE.match(ln)]
            if not lines:
                continue
            lead = len(lines[0]) - len(lines[0].lstrip())
            if lead == 0:  # the next (homograph's) entry: keep to the first one
                break
            if lead > 6:  # indented quotation with its --Author
                continue
            stop = next((i for i, ln in enumerate(lines) if not ln[0].isspace()), None)
            text = " ".join(ln.strip() for ln in lines[:stop])
            last = stop is not None  # a column-0 line inside: the next entry starts there
        if re.match(r"^(Syn|Note|Usage|Specifically|Hence):", text):
            continue
        if text.startswith("{"):
            if senses:
                break  # phrase sub-entries ({Apt to}, ...) follow the senses
            continue
        d = gc_clean_def(text)
        if d:
            senses.append(d)
        if len(senses) >= max_senses:
            break
    d = " ".join(s if s.endswith((".", "!", "?")) else s + "." for s in senses)
    if GC_XREF_ONLY.match(d) or re.search(r"(^|\s)\?|\?\w", d):
        return head, ""  # bare cross-references teach nothing; '?' marks characters lost in the source
    return head, d


def source_gcide(unpacked, max_senses):
    idx, dz = find_dictd(unpacked, "gcide")
    raw = []
    for _, art in dictd_entries(idx, dz):
        head, d = gc_parse(art, max_senses)
        if head and d:
            raw.append((head, d))
    return dedup_pairs(raw, "gcide")


# ---------------------------------------------------------------------------------------------------------------------
# source 4 (optional): STS-B train, score >= 4


MOJIBAKE = {"\u201a\u00c4\u00f4": "'", "\u201a\u00c4\u0117": "'", "\u201a\u00c4\u00fa": '"',
            "\u201a\u00c4\u00f9": '"', "\u201a\u00c4\u010f": "-", "\u201a\u00c4\u00ee": "-",
            "\u201a\u00c4\u00ec": "-", "\u201a\u00c4\u00b6": "..."}


def fix_mojibake(s):
    """Some STS-B sentences carry UTF-8 punctuation mis-decoded as Mac Roman ('\u201a\u00c4\u00f4' for a right
    quote): map those sequences back to ASCII punctuation."""
    if "\u201a\u00c4" in s:
        for k, v in MOJIBAKE.items():
            s = s.replace(k, v)
    return s


def source_stsb(path):
    """STS-B train pairs with score >= 4. STS-B reuses some sentences across its splits: when dev.jsonl / test.jsonl
    sit next to train.jsonl, train pairs sharing a sentence with them are dropped (they are only read for that)."""
    held = set()
    for split in ("dev.jsonl", "test.jsonl"):
        sp = os.path.join(os.path.dirname(path), split)
        if os.path.exists(sp):
            with open(sp, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        held.add(norm_key(fix_mojibake(r["s1"])))
                        held.add(norm_key(fix_mojibake(r["s2"])))
    pairs, overlap = [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            rid = str(r.get("id", ""))
            if rid and not rid.startswith("stsb-train"):
                die(f"{path}:{n}: id '{rid}' is not an STS-B train row; refusing (only train may be used)")
            if float(r["score"]) >= 4.0:
                s1, s2 = squash(fix_mojibake(r["s1"])), squash(fix_mojibake(r["s2"]))
                if norm_key(s1) in held or norm_key(s2) in held:
                    overlap += 1
                    continue
                pairs.append((s1, s2))
    print(f"  stsb: {len(pairs)} train pairs with score >= 4 ({overlap} dropped: a sentence also in STS-B dev/test)",
          flush=True)
    return pairs


# ---------------------------------------------------------------------------------------------------------------------


def is_dev(query):
    return int(hashlib.sha1(norm_key(query).encode("utf-8")).hexdigest()[:8], 16) % 100 < DEV_PERCENT


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for q, p, s in rows:
            f.write(json.dumps({"query": q, "positive": p, "source": s}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def os_codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "bookworm"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (pairs.jsonl, dev.jsonl, manifest.json, cache/)")
    ap.add_argument("--stsb", help="STS-B train.jsonl (optional; only the train split is accepted)")
    ap.add_argument("--sources", default="debian,wn,gcide", help="comma list among debian,wn,gcide (default all)")
    ap.add_argument("--suite", default=None, help="Debian suite of the Translation-en files (default: this "
                    "machine's codename, e.g. bookworm)")
    ap.add_argument("--seed", type=int, default=1234, help="shuffle seed (default 1234)")
    ap.add_argument("--max-senses", type=int, default=3, help="senses per dictionary headword (default 3)")
    ap.add_argument("--refresh", action="store_true", help="re-fetch apt lists and packages instead of the cache")
    a = ap.parse_args()

    t0 = time.time()
    sources = [s.strip() for s in a.sources.split(",") if s.strip()]
    for s in sources:
        guard_name(s, "source")
        if s not in ("debian", "wn", "gcide"):
            die(f"unknown source '{s}' (known: debian, wn, gcide; STS-B train via --stsb)")
    stsb = guard_stsb(a.stsb) if a.stsb else None
    out = os.path.abspath(a.out)
    cache = os.path.join(out, "cache")
    os.makedirs(cache, exist_ok=True)
    manifest = {"tool": "tools/build_pretrain_pairs.py", "seed": a.seed, "max_senses": a.max_senses,
                "max_positive_chars": MAX_POS_CHARS, "dev_percent": DEV_PERCENT, "inputs": [], "counts": {}}

    print("fetching (private apt state in " + cache + ")", flush=True)
    apt_update(cache, a.refresh)
    dict_pkgs = [p for p, s in (("dict-wn", "wn"), ("dict-gcide", "gcide")) if s in sources]
    for p in dict_pkgs:
        if p not in ALLOWED_DICT_PACKAGES:
            die(f"package {p} is not an allowed training source")
    debs = fetch_debs(cache, dict_pkgs, a.refresh)
    for p, (_, v) in debs.items():
        manifest["inputs"].append({"package": p, "version": v})
    t_fetch = time.time() - t0

    print("parsing", flush=True)
    per_source = {}
    if "debian" in sources:
        per_source["debian"] = source_debian(cache, a.suite or os_codename(), manifest)
    if "wn" in sources:
        per_source["wn"] = source_wn(debs["dict-wn"][0], a.max_senses)
    if "gcide" in sources:
        per_source["gcide"] = source_gcide(debs["dict-gcide"][0], a.max_senses)
    if stsb:
        per_source["stsb"] = source_stsb(stsb)
        manifest["inputs"].append({"file": "stsb/train.jsonl",
                                   "sha256": hashlib.sha256(open(stsb, "rb").read()).hexdigest()})

    train, dev = [], []
    for src in sorted(per_source):
        ntr = ndev = 0
        for q, p in per_source[src]:
            if is_dev(q):
                dev.append((q, p, src))
                ndev += 1
            else:
                train.append((q, p, src))
                ntr += 1
        lens = [len(p) for _, p in per_source[src]] or [0]
        manifest["counts"][src] = {"train": ntr, "dev": ndev, "mean_positive_chars": round(sum(lens) / len(lens), 1),
                                   "mean_query_chars": round(sum(len(q) for q, _ in per_source[src]) /
                                                             max(1, len(per_source[src])), 1)}
    random.Random(a.seed).shuffle(train)
    manifest["counts"]["total"] = {"train": len(train), "dev": len(dev)}
    manifest["sha256"] = {"pairs.jsonl": write_jsonl(os.path.join(out, "pairs.jsonl"), train),
                          "dev.jsonl": write_jsonl(os.path.join(out, "dev.jsonl"), dev)}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    el = time.time() - t0
    print(f"\n{'source':8} {'train':>8} {'dev':>6} {'mean pos chars':>15}")
    for src in sorted(per_source):
        c = manifest["counts"][src]
        print(f"{src:8} {c['train']:8d} {c['dev']:6d} {c['mean_positive_chars']:15.1f}")
    print(f"{'total':8} {len(train):8d} {len(dev):6d}")
    size = os.path.getsize(os.path.join(out, "pairs.jsonl"))
    print(f"\nwrote {out}/pairs.jsonl ({size / 1e6:.1f} MB), dev.jsonl, manifest.json "
          f"in {el:.1f} s (fetch {t_fetch:.1f} s)")


if __name__ == "__main__":
    main()
