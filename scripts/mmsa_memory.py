"""Peak memory of loading an MMSA-format MOSEI file: the pickle against its `miar data convert` folder.

A synthetic unaligned MOSEI pickle with MMSA's keys and shapes (768 / 74 / 35 dims, 50 / 500 / 500 steps) and
``--n`` training samples (valid and test a tenth and a fifth of it) is written to a temporary folder and
converted; each way of loading then runs in a fresh process, which reports its peak resident memory (VmHWM)
after ``build_splits`` (loading, validation, standardization) and its anonymous and file-backed resident memory
then (file-backed pages of a memory map are clean: the kernel can drop them; anonymous memory it cannot), for all
three modalities and for audio and vision only (what a text backbone leaves to load: the text comes as token
ids). Writes a JSON record.

    .venv/bin/python scripts/mmsa_memory.py --n 2000 --json results/bench/mmsa_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
from miar import config as C
from miar.data import build_splits
path, mods = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
splits = build_splits(C.load("mmsa_mosei_miar", overrides=[f"data.path={path}", f"data.modalities=[{mods}]"]))
dt = time.perf_counter() - t0
import gc; gc.collect()
status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if l.split(":")[0] in
          ("VmHWM", "RssAnon", "RssFile")}
print(json.dumps({"peak_rss_mb": status["VmHWM"] / 1024, "anon_after_mb": status["RssAnon"] / 1024,
                  "file_backed_after_mb": status["RssFile"] / 1024, "load_s": dt,
                  "n": {k: len(v) for k, v in splits.items()}}))
"""


def measure(path: Path, modalities: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), modalities], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="training samples (valid n/10, test n/5)")
    p.add_argument("--json", default=None, help="write the record here")
    args = p.parse_args(argv)
    from miar.data.convert import convert_pickle
    from miar.data.synthetic import make_synthetic, write_mmsa_pickle

    with tempfile.TemporaryDirectory() as tmp:
        pkl, conv = Path(tmp) / "unaligned_50.pkl", Path(tmp) / "converted"
        write_mmsa_pickle(make_synthetic("mosei", n_train=args.n, n_valid=args.n // 10, n_test=args.n // 5,
                                         aligned=False), pkl)
        t0 = time.perf_counter()
        convert_pickle(pkl, conv)
        convert_s = time.perf_counter() - t0
        size = {"pickle_mb": pkl.stat().st_size / 2**20,
                "converted_mb": sum(f.stat().st_size for f in conv.rglob("*") if f.is_file()) / 2**20}
        rows = {f"{way}_{label}": measure(path, mods)
                for way, path in (("pickle", pkl), ("converted", conv))
                for label, mods in (("all", "text, audio, vision"), ("audio_vision", "audio, vision"))}
    record = {"what": "peak RSS of build_splits on a synthetic unaligned MOSEI-shaped MMSA file",
              "n_train": args.n, "convert_s": convert_s, **size, "loads": rows}
    print(json.dumps(record, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
