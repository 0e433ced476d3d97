#!/usr/bin/env python3
"""How long each field of a paper from the Daily Papers API is in the recorded days: the
figures the caps in src/source/limits.rs are chosen from.

Usage: python3 benches/source_fields.py DIR   (DIR: the recorded YYYY-MM-DD.json responses)

Text fields are counted in characters after white space is normalised (as the parser does),
URLs and JSON in bytes. Prints count, p50, p99, p99.9 and max per field.
"""
import glob
import json
import os
import sys


def norm(s):
    return " ".join(s.split())


def main(directory):
    days = sorted(glob.glob(os.path.join(directory, "*.json")))
    names = ["title", "summary", "ai_summary", "author_name", "authors", "keywords",
             "keyword", "organization", "githubRepo", "projectPage", "thumbnail", "id",
             "item_json_bytes", "response_bytes"]
    fields = {k: [] for k in names}
    decoder = json.JSONDecoder()
    items = 0
    for f in days:
        text = open(f, encoding="utf-8").read()
        fields["response_bytes"].append(len(text.encode()))
        # Each item's JSON as the response holds it.
        i = text.index("[") + 1
        while True:
            while text[i] in " \t\r\n,":
                i += 1
            if text[i] == "]":
                break
            item, j = decoder.raw_decode(text, i)
            fields["item_json_bytes"].append(len(text[i:j].encode()))
            i = j
            items += 1
            p = item["paper"]
            fields["id"].append(len(p["id"]))
            fields["title"].append(len(norm(p.get("title", ""))))
            fields["summary"].append(len(norm(p.get("summary", ""))))
            if p.get("ai_summary"):
                fields["ai_summary"].append(len(norm(p["ai_summary"])))
            authors = p.get("authors", [])
            fields["authors"].append(len(authors))
            fields["author_name"] += [len(norm(a.get("name", ""))) for a in authors]
            keywords = p.get("ai_keywords") or []
            if keywords:
                fields["keywords"].append(len(keywords))
            fields["keyword"] += [len(norm(k)) for k in keywords]
            for org in (p.get("organization"), item.get("organization")):
                for key in ("fullname", "name"):
                    if org and org.get(key):
                        fields["organization"].append(len(norm(org[key])))
            for key, where in (("githubRepo", p), ("projectPage", p), ("thumbnail", item)):
                if where.get(key):
                    fields[key].append(len(where[key].strip().encode()))
    print(f"{len(days)} days, {items} items")
    print(f"{'field':16} {'count':>7} {'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>7}")
    for name, values in fields.items():
        values.sort()
        def q(x):
            return values[min(len(values) - 1, int(x * len(values)))]
        print(f"{name:16} {len(values):7} {q(.5):7} {q(.99):7} {q(.999):7} {values[-1]:7}")


if __name__ == "__main__":
    main(sys.argv[1])
