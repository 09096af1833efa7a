#!/usr/bin/env python3
"""Build the small bundled sample corpus (models/samples/debian/) from Debian's package descriptions.

Debian's apt Translation-en index (DFSG-free package descriptions) is fetched with a private apt list directory,
so nothing on the system changes. Output, deterministic for a given index:
  corpus.jsonl   {"_id": package, "title": short description, "text": long description}   (N docs)
  queries.txt    a few example queries for the README's main command
Usage: tools/make_sample_corpus.py [--n 600] [--out models/samples/debian] [--translation FILE]
"""
import argparse, hashlib, json, os, subprocess, sys, tempfile


def fetch_translation():
    d = tempfile.mkdtemp()
    os.makedirs(f"{d}/lists/partial")
    subprocess.run(["apt-get", "-o", f"Dir::State::Lists={d}/lists", "-o", "Acquire::Languages=en", "-qq", "update"],
                   check=True)
    f = [x for x in os.listdir(f"{d}/lists") if x.endswith("bookworm_main_i18n_Translation-en.lz4")]
    if not f:
        sys.exit("no Translation-en index found")
    out = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", f"{d}/lists/{f[0]}"], check=True,
                         capture_output=True).stdout.decode("utf-8", "replace")
    return out


def parse(text):
    recs, cur = [], None
    for line in text.split("\n"):
        if line.startswith("Package: "):
            cur = {"pkg": line[9:].strip(), "short": "", "long": []}
            recs.append(cur)
        elif line.startswith("Description-en: ") and cur is not None:
            cur["short"] = line[16:].strip()
        elif line.startswith(" ") and cur is not None:
            s = line[1:]
            cur["long"].append("" if s.strip() == "." else s.strip())
    return recs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--out", default="models/samples/debian")
    ap.add_argument("--translation", help="an already decompressed Translation-en file")
    a = ap.parse_args()
    text = open(a.translation, encoding="utf-8", errors="replace").read() if a.translation else fetch_translation()
    seen, docs = set(), []
    for r in parse(text):
        body = " ".join(x for x in r["long"] if x).strip()
        if len(body) < 80 or body in seen or not r["short"]:
            continue
        seen.add(body)
        docs.append((hashlib.sha1(r["pkg"].encode()).hexdigest(), r))
    docs.sort(key=lambda x: x[0])  # deterministic pseudo-random sample
    docs = sorted(docs[: a.n], key=lambda x: x[1]["pkg"])
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for _, r in docs:
            f.write(json.dumps({"_id": r["pkg"], "title": r["short"], "text": " ".join(x for x in r["long"] if x)},
                               ensure_ascii=False) + "\n")
    print(f"wrote {len(docs)} documents to {a.out}/corpus.jsonl")


if __name__ == "__main__":
    main()
