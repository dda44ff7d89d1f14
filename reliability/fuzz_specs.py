"""Fuzz the spec loader and model builder with thousands of broken and hostile specs.

usage: python reliability/fuzz_specs.py [--cases 3000] [--seed 0] [--memory-gb 6] [--failures F]

Each case is a real spec mutated (see reliability/spec_cases.py) or random YAML.
It must end in a SpecError located `file:line:col: ` or in a valid model;
the counts of every outcome are printed per kind of case, and every case that
breaks the promise is written to the failures file (default fuzz-failures.txt)
with its text and traceback. Exit code 1 if any case broke it.

Memory is capped with RLIMIT_AS, so a spec asking for a gigantic layer must
fail cleanly (TensorFlow's out-of-memory error comes back as a located
SpecError) instead of swapping the machine; each case has a time limit.
"""

import argparse
import collections
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from reliability.spec_cases import (BUILT_SPECS, LOADED_ONLY_SPECS, OUTCOMES,  # noqa: E402
                                    RANDOM_YAML, copy_specs, mutated_spec, try_spec,
                                    warm_up)

KINDS = {  # kind of case -> (strategy of (spec name, text), build the model?)
    "small spec mutated, built": (mutated_spec(BUILT_SPECS), True),
    "big spec mutated, loaded": (mutated_spec(LOADED_ONLY_SPECS), False),
    "random YAML, built": (RANDOM_YAML.map(lambda text: ("random", text)), True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000, help="cases in all, shared by kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-gb", type=float, default=6.0)
    parser.add_argument("--failures", default="fuzz-failures.txt")
    args = parser.parse_args()
    limit = int(args.memory_gb * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    import keras

    warm_up()
    counts = {kind: collections.Counter() for kind in KINDS}
    slowest = (0.0, "")
    failures = []
    Path(args.failures).unlink(missing_ok=True)  # written as failures happen, in case of a hang
    specs = copy_specs(Path(tempfile.mkdtemp(prefix="zoo-fuzz-")))
    started = time.monotonic()
    for kind, (strategy, build) in KINDS.items():  # noqa: B023  each run_case runs in its turn
        @seed(args.seed)
        @settings(max_examples=args.cases // len(KINDS), database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run_case(case):
            nonlocal slowest
            name, text = case
            path = specs / f"case_{name}.yaml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            start = time.monotonic()
            outcome, detail = try_spec(path, build=build)
            seconds = time.monotonic() - start
            slowest = max(slowest, (seconds, f"{kind}: {outcome}"))
            counts[kind][outcome] += 1
            if outcome not in ("model", "located SpecError"):
                failures.append(outcome)
                with open(args.failures, "a", encoding="utf-8", errors="backslashreplace") as log:
                    log.write(f"=== {kind}: {outcome} after {seconds:.1f} s\n--- spec\n{text}\n"
                              f"--- detail\n{detail}\n\n")
            if sum(counts[kind].values()) % 50 == 0:
                keras.backend.clear_session()  # thousands of models would pile up otherwise

        run_case()
        print(f"{kind}: " + ", ".join(f"{counts[kind][o]} {o}" for o in OUTCOMES), flush=True)
    total = sum(counts.values(), collections.Counter())
    print(f"all {sum(total.values())} cases in {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{total[o]} {o}" for o in OUTCOMES))
    print(f"slowest case {slowest[0]:.2f} s ({slowest[1]}); peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if failures:
        print(f"{len(failures)} cases broke the promise: see {args.failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
