#!/usr/bin/env python3
"""Compares badkeys' and `certresponder analyze`'s verdicts on the same files, for
scripts/bench-analyze.

    compare-badkeys.py MANIFEST OURS_JSON BADKEYS_JSONL

MANIFEST is tests/fixtures/weak_keys.py's manifest.json, OURS_JSON the output of
`certresponder analyze --json`, BADKEYS_JSONL that of `badkeys --json` (one object per key
with a finding; a file it does not list had none). Files are matched by name.

A verdict is the set of checks both tools implement that flag the file, in certresponder's
names (the mapping is that of tests/badkeys_crosscheck.rs). Not compared:
  - `shared_prime`: badkeys' `sharedprimes` looks moduli up in its own list of known shared
    primes, ours is a batch GCD across the files; the planted pairs are counted instead;
  - badkeys' `rsawarnings/unusual_keysize`, which certresponder does not implement
    (counted);
  - certresponder's certificate, EC and other checks, which badkeys does not implement.
badkeys reports only the most severe `rsawarnings` subtest, so a size or exponent finding of
ours agrees with any `rsawarnings` result.

Prints every differing verdict and every planted weakness either tool missed; exits 1 if
there is one.
"""

import collections
import json
import os
import sys

COMMON = {"fermat", "roca", "rsa_small_factor", "rsa_small_d", "rsa_invalid",
          "rsa_modulus_small", "rsa_modulus_not_multiple_of_8", "rsa_exponent_bad",
          "rsa_bias", "rsa_pattern", "xz_backdoor", "dsa_sparse"}
WARNING_IDS = {"rsa_modulus_small", "rsa_modulus_not_multiple_of_8", "rsa_exponent_bad"}


def ours_id(check, subtest, n_hex):
    """certresponder's check id for a badkeys result, or None (not implemented)."""
    if check == "smallfactors":
        even = n_hex is not None and int(n_hex[-1], 16) % 2 == 0
        return "rsa_invalid" if even else "rsa_small_factor"
    if check == "rsawarnings":
        return {"extremely_small": "rsa_modulus_small", "too_small": "rsa_modulus_small",
                "not_multiple_of_8": "rsa_modulus_not_multiple_of_8",
                "exponent_3": "rsa_exponent_bad",
                "exponent_not_65537": "rsa_exponent_bad"}.get(subtest)
    return {"fermat": "fermat", "roca": "roca", "smalld": "rsa_small_d",
            "rsainvalid": "rsa_invalid", "rsapoly": "rsa_invalid",
            "sharedprimes": "shared_prime", "rsabias": "rsa_bias", "pattern": "rsa_pattern",
            "xzbackdoor": "xz_backdoor", "dsasparse": "dsa_sparse"}.get(check)


def main():
    manifest_path, ours_path, badkeys_path = sys.argv[1:4]
    with open(manifest_path) as f:
        manifest = json.load(f)
    with open(ours_path) as f:
        ours = {os.path.basename(x["path"]): x for x in json.load(f)["files"]}
    badkeys = {}
    with open(badkeys_path) as f:
        for line in f:
            v = json.loads(line)
            badkeys[os.path.basename(v["where"])] = v

    differ, missed, unread = [], [], []
    not_implemented = collections.Counter()
    shared = {"planted": 0, "found": 0, "other": 0}
    flagged = collections.Counter()
    for m in manifest:
        name = m["file"]
        o = ours.get(name)
        b = badkeys.get(name, {"type": "clean", "results": {}})
        if o is None or o["error"] or b["type"] in ("unparseable", "unsupported", "notfound"):
            unread.append(f"{name}: analyze {o and o['error']}, badkeys {b['type']}")
            continue
        findings = [f for obj in o["objects"] for f in obj["findings"]]
        ours_ids = {f["check"] for f in findings}
        bk_results = {c: r.get("subtest") for c, r in b["results"].items()}
        bk_ids = set()
        for c, sub in bk_results.items():
            i = ours_id(c, sub, b.get("n"))
            if i is None:
                not_implemented[c if sub is None else f"{c}/{sub}"] += 1
            elif i != "shared_prime":
                bk_ids.add(i)
        ours_common = ours_ids & COMMON
        if "rsawarnings" in bk_results:
            ours_common -= WARNING_IDS - bk_ids  # badkeys shows one warning only
        if ours_common != bk_ids:
            differ.append(f"{name}: badkeys {sorted(bk_results) or '[]'} -> {sorted(bk_ids)}, "
                          f"certresponder {sorted(ours_ids)}")
        for i in sorted(set(m["expect"]) - ours_ids):
            missed.append(f"{name}: certresponder missed the planted {i}")
        for c in sorted(set(m["badkeys"]) - set(bk_results)):
            missed.append(f"{name}: badkeys missed the planted {c}")
        if "shared_prime" in m["expect"]:
            shared["planted"] += 1
            shared["found"] += "shared_prime" in ours_ids
        elif "shared_prime" in ours_ids:
            shared["other"] += 1
        flagged["badkeys"] += bool(bk_results)
        flagged["certresponder"] += any(f["confidence"] != "low" for f in findings)

    print(f"verdicts: {len(manifest)} files; flagged by badkeys {flagged['badkeys']}, by "
          f"certresponder {flagged['certresponder']} (medium confidence or above)")
    print(f"  differing verdicts on the checks both implement: {len(differ)}")
    for d in differ:
        print(f"    DIFF {d}")
    print(f"  planted weaknesses missed: {len(missed)}")
    for d in missed:
        print(f"    MISSED {d}")
    if unread:
        print(f"  files not read by one of the tools: {len(unread)}")
        for d in unread:
            print(f"    UNREAD {d}")
    print(f"  shared_prime (certresponder only, batch GCD across the files): "
          f"{shared['found']}/{shared['planted']} planted keys found, {shared['other']} others")
    if not_implemented:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(not_implemented.items()))
        print(f"  badkeys checks certresponder does not implement, not compared: {listed}")
    sys.exit(1 if differ or missed or unread else 0)


if __name__ == "__main__":
    main()
