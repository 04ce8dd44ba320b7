"""Run the benchmark: ``python benchmarks/run_bench.py [miar bench options]``.

Without options it runs the full benchmark against MMSA and writes ``results/bench/cpu.json``
(``cuda.json`` on a GPU machine); with options it is ``miar bench`` itself.
"""

import sys

import torch

from miar.bench.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:] or ["--compare", "mmsa", "--json",
                            f"results/bench/{'cuda' if torch.cuda.is_available() else 'cpu'}.json"]
    sys.exit(main(argv))
