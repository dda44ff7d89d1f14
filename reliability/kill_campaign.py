"""kill -9 a small training run at random moments; the same command must then finish it.

usage: python reliability/kill_campaign.py [--trials 24] [--epochs 4] [--seed 0] [--keep DIR]

Each trial starts `train.py specs/mlp.yaml` on the embedded digits (1.3M parameters,
so checkpoints and exports take long enough to be hit; 44 steps an epoch, a
checkpoint every 5 steps: `train.checkpoint_every`), kills it with SIGKILL at
a moment chosen in turn from: a random time of the run, while a checkpoint in
a random epoch is being written (TensorFlow's `*_temp` files or the run state's
`.tmp` are on disk), just after a checkpoint within a random epoch was recorded,
while the export is being written (its `.incomplete-*` staging directory
exists). Then it runs the same command again and checks that it
- exits 0 and ends with a complete export that TensorFlow loads and serves,
- has a history of exactly --epochs epochs,
- resumed at the step the killed run had recorded, or later (nothing lost but
  the steps since the last checkpoint, at most 5),
- left no half-written version (every numbered directory is complete) and no
  staging directory of the killed export.
Prints one line per trial and the totals; exit code 1 if any trial failed.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOMENTS = ("random time", "checkpoint writing", "within an epoch", "export writing")
CHECKPOINT_EVERY = 5  # steps


def command(epochs: int) -> list:
    return [sys.executable, str(ROOT / "train.py"), str(ROOT / "specs" / "mlp.yaml"),
            "--output", "exports", "--set", "data.dataset=digits",
            "--set", f"train.epochs={epochs}",
            "--set", f"train.checkpoint_every={CHECKPOINT_EVERY}"]


def moment_reached(moment: str, work: Path, deadline: float, epoch: int) -> bool:
    if moment == "random time":
        return time.monotonic() >= deadline
    if moment == "checkpoint writing":  # a checkpoint in `epoch`
        directory = work / "exports" / "mlp" / "checkpoint" / "train"
        names = os.listdir(directory) if directory.is_dir() else []
        return position_recorded(work)[0] == epoch - 1 and any(
            "_temp" in name or name.endswith(".tmp") for name in names)
    if moment == "within an epoch":
        epochs_done, steps = position_recorded(work)
        return epochs_done == epoch - 1 and steps > 0
    directory = work / "exports" / "mlp"
    names = os.listdir(directory) if directory.is_dir() else []
    return any(name.startswith(".incomplete-") for name in names)


def position_recorded(work: Path) -> tuple[int, int]:
    """(epochs, steps into the next) that the run state records as done."""
    state = work / "exports" / "mlp" / "checkpoint" / "train" / "state.json"
    try:
        saved = json.loads(state.read_text())
    except (OSError, ValueError):
        return 0, 0
    return len(saved["history"]), (saved.get("partial") or {}).get("position", [0, 0])[1]


def position_resumed(output: str) -> tuple[int, int]:
    """(epochs, steps) a re-run says it resumed after; (0, 0) if it started afresh."""
    within = re.search(r"^resuming mlp in epoch (\d+)/\d+ after step (\d+) of", output, re.M)
    if within:
        return int(within[1]) - 1, int(within[2])
    after = re.search(r"^resuming mlp after epoch (\d+) of", output, re.M)
    return (int(after[1]), 0) if after else (0, 0)


def complete_versions(work: Path) -> tuple[list, list]:
    """(versions that load and serve, versions that do not)."""
    import tensorflow as tf

    good, bad = [], []
    directory = work / "exports" / "mlp"
    for name in sorted(os.listdir(directory)) if directory.is_dir() else []:
        if not name.isdigit():
            continue
        try:
            serve = tf.saved_model.load(str(directory / name)).signatures["serving_default"]
            serve(image=tf.zeros([1, 8, 8, 1], tf.uint8))
            json.loads((directory / name / "metadata.json").read_text())
            good.append(name)
        except Exception as exc:  # any failure means a damaged version: that is the finding
            bad.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return good, bad


def trial(number: int, moment: str, epochs: int, rng: random.Random, work: Path,
          run_seconds: float) -> dict:
    """One kill and re-run; `run_seconds` is about how long a whole run takes here."""
    process = subprocess.Popen(command(epochs), cwd=work, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    deadline = started + rng.uniform(0.3, 1.0) * run_seconds
    epoch = rng.randint(1, epochs)
    while process.poll() is None and not moment_reached(moment, work, deadline, epoch):
        time.sleep(0.005)
    hit = process.poll() is None
    if hit:
        os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    killed_after = time.monotonic() - started
    recorded = position_recorded(work)
    rerun = subprocess.run(command(epochs), cwd=work, capture_output=True, text=True,
                           timeout=900)
    trained = [int(match) for match in re.findall(r"^mlp: epoch (\d+)/", rerun.stdout, re.M)]
    resumed = position_resumed(rerun.stdout)
    lost = trained and resumed < recorded  # none trained: all was done
    good, bad = complete_versions(work)
    history_lengths = [len(json.loads((work / "exports" / "mlp" / v / "history.json")
                                      .read_text())["train"]) for v in good]
    problems = []
    if rerun.returncode != 0:
        problems.append(f"re-run exit {rerun.returncode}: {rerun.stderr.strip()[-300:]}")
    if not good:
        problems.append("no complete export")
    if bad:
        problems.append(f"damaged versions: {bad}")
    if any(name.startswith(".incomplete-") for name in os.listdir(work / "exports" / "mlp")):
        problems.append("a staging directory was left behind")
    if any(length != epochs for length in history_lengths):
        problems.append(f"history lengths {history_lengths}, expected {epochs}")
    if lost:
        problems.append(f"lost recorded work: the re-run resumed at (epochs, steps) {resumed}, "
                        f"the killed run had recorded {recorded}")
    return {"trial": number, "moment": moment, "hit": hit, "killed_after_s": round(killed_after, 2),
            "recorded": recorded, "resumed": resumed, "rerun_trained": trained,
            "versions": good,
            "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="keep each trial's folder under this directory")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rng = random.Random(args.seed)
    results = []
    run_seconds = 40.0  # until an export trial measures it: start-up is slow on a busy machine
    for number in range(1, args.trials + 1):
        moment = MOMENTS[(number - 1) % len(MOMENTS)]
        work = Path(tempfile.mkdtemp(prefix=f"trial{number}-", dir=args.keep))
        result = trial(number, moment, args.epochs, rng, work, run_seconds)
        if moment == "export writing" and result["hit"]:
            run_seconds = result["killed_after_s"]
        results.append(result)
        print(json.dumps(result), flush=True)
    hits = {moment: sum(r["hit"] for r in results if r["moment"] == moment) for moment in MOMENTS}
    failed = [r for r in results if r["problems"]]
    print(f"{len(results)} trials; killed while running: " +
          ", ".join(f"{hits[m]} at {m}" for m in MOMENTS) +
          f"; {len(results) - len(failed)} resumed to a complete export with no recorded step "
          f"lost; {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
