"""The command line the LLM-op benchmarks of bench/ share (llm_long_ctx.py, llm_ops_bench.py)."""
import argparse
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parser(program_option, program, cases):
    """An argument parser with --PROGRAM_OPTION (the program timed, default build/bin/PROGRAM), --dir (where the models
    and inputs are written, default build/bench-llm), --threads ("1 2") and --cases (comma-separated, default
    CASES); the benchmark adds its own options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--" + program_option, default=os.path.join(ROOT, "build", "bin", program))
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "bench-llm"))
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--cases", default=cases)
    return ap


def parse(ap):
    """The arguments, with --dir made."""
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    return a
