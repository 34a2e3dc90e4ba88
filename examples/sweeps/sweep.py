"""One worker of a sweep: every array task runs this on the same study until it has its trials.
    python sweep.py --storage journal:/shared/optuna.log --study NAME --n-trials N"""
import argparse
import time

import gracefulstop
import gracefulstop.optuna as gso

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--storage", required=True, help="journal:PATH for many nodes (NFS), sqlite:///PATH for one")
parser.add_argument("--study", required=True)
parser.add_argument("--n-trials", type=int, required=True, help="finished trials the whole study needs")
parser.add_argument("--trial-seconds", type=float, default=0.0, help="pretend each trial trains this long")
args = parser.parse_args()


def objective(trial):  # stands in for a training run
    x, layers = trial.suggest_float("x", -10, 10), trial.suggest_int("layers", 1, 4)
    time.sleep(args.trial_seconds)
    return (x - 2) ** 2 + layers


study = gso.load_or_create_study(args.study, args.storage, direction="minimize")  # loads it on restarts
result = gso.optimize(study, objective, n_trials=args.n_trials)
print(f"{'resumed' if gracefulstop.resuming() else 'started'} worker: ran {result.ran} trials; "
      f"{result.finished}/{args.n_trials} finished; " + ("study done" if result.done else f"stopped: {result.stopped}"))
