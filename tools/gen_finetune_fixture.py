#!/usr/bin/env python3
"""Tiny fine-tuning fixtures for tests/test_finetune.c and tests/cli_finetune.sh (stdlib only).

tests/fixtures/finetune/beir/  : 12 topics x 6 queries x 3 docs, texts from the vocabulary of
                                 tests/fixtures/e2e/model. A query and its topic's docs share ONE topic word;
                                 everything else is shared filler, so the untrained model ranks poorly and
                                 any training on the train queries (same topics) helps the held-out ones.
tests/fixtures/finetune/pairs.jsonl : one (query, positive, id) row per BEIR judgment of the first doc.
tests/fixtures/finetune/split.txt   : "<id> test|train" by the split rule of docs/data-formats.md, computed here with hashlib
                                      (the independent reference for et_split_is_test / the finetune split).
tests/fixtures/finetune/pairs_noid.jsonl : the same queries WITHOUT "id", each in two rows (positives doc 0 and
                                      doc 1 of its topic): the split key is then the query text, so both rows of
                                      a query fall on the same side (docs/data-formats.md).
tests/fixtures/finetune/split_query.tsv  : "test|train<TAB><query text>" for each distinct query of pairs_noid.jsonl,
                                      by the same rule on the query text (hashlib).
"""
import hashlib, json, os, random

def is_test(qid):
    return int(hashlib.sha1(qid.encode()).hexdigest()[:8], 16) % 100 >= 80

topics = ["dog", "fox", "cafe", "recipe", "password", "emoji", "braces", "brackets", "colons", "numbers",
          "punctuation", "tabs"]
filler = ["the", "a", "and", "of", "on", "for", "it", "that", "so", "how", "my", "here", "do", "be", "quick",
          "brown", "lazy", "test", "text", "far", "much"]
rng = random.Random(7)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "finetune")
os.makedirs(os.path.join(root, "beir"), exist_ok=True)

def sent(word, n):
    w = [rng.choice(filler) for _ in range(n)]
    w.insert(rng.randrange(n + 1), word)
    return " ".join(w)

docs, queries, qrels = [], [], []
for t, word in enumerate(topics):
    for j in range(3):
        docs.append({"_id": f"d{t}_{j}", "title": "", "text": sent(word, 12)})
    for m in range(6):
        qid = f"q{t}_{m}"
        queries.append({"_id": qid, "text": sent(word, 5)})
        for j in range(3):
            qrels.append((qid, f"d{t}_{j}", 1))
with open(os.path.join(root, "beir", "corpus.jsonl"), "w") as f:
    for d in docs: f.write(json.dumps(d) + "\n")
with open(os.path.join(root, "beir", "queries.jsonl"), "w") as f:
    for q in queries: f.write(json.dumps(q) + "\n")
with open(os.path.join(root, "beir", "qrels.tsv"), "w") as f:
    f.write("query-id\tcorpus-id\tscore\n")
    for q, d, s in qrels: f.write(f"{q}\t{d}\t{s}\n")
doc_text = {d["_id"]: d["text"] for d in docs}
with open(os.path.join(root, "pairs.jsonl"), "w") as f:
    for q in queries:
        t = q["_id"][1:].split("_")[0]
        f.write(json.dumps({"query": q["text"], "positive": doc_text[f"d{t}_0"], "id": q["_id"]}) + "\n")
with open(os.path.join(root, "split.txt"), "w") as f:
    for q in queries: f.write(f"{q['_id']} {'test' if is_test(q['_id']) else 'train'}\n")
with open(os.path.join(root, "pairs_noid.jsonl"), "w") as f:
    for q in queries:
        t = q["_id"][1:].split("_")[0]
        for j in (0, 1):
            f.write(json.dumps({"query": q["text"], "positive": doc_text[f"d{t}_{j}"]}) + "\n")
texts = sorted({q["text"] for q in queries})
with open(os.path.join(root, "split_query.tsv"), "w") as f:
    for t in texts: f.write(f"{'test' if is_test(t) else 'train'}\t{t}\n")
# the rule on the 1-based row number (what finetune used before) splits differently: the test checks that
rows_test = sum(is_test(str(i + 1)) for i in range(2 * len(queries)))
print(sum(is_test(q["_id"]) for q in queries), "test queries of", len(queries), "by id;",
      sum(is_test(t) for t in texts), "of", len(texts), "distinct texts by text;", rows_test, "rows by row number")
