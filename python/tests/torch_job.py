"""A small PyTorch training job for the tests: a DataLoader with worker processes, a checkpoint on
stop, and an exact resume. Every step appends the sample indices it trained on to SEEN (one JSON
line: epoch, step, indices), after the step and before the stop check, so the test can tell that
every sample was trained on once per epoch across attempts.

    python torch_job.py DIR --context fork|spawn [--persistent] [--no-protect] [--open-state-late]

--no-protect leaves out gracefulstop.torch.loader_options() (the failure it fixes).

DIR holds checkpoint.pt and seen.jsonl. Exit 0 when stopped (with a checkpoint) or finished (it
then writes DIR/finished).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

import gracefulstop
import gracefulstop.torch as gst

SAMPLES, BATCH, EPOCHS = 96, 4, 2


class Squares(Dataset):
    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, index: int):
        x = torch.tensor([index / SAMPLES], dtype=torch.float32)
        return index, x, x * x


class ResumableSampler(Sampler):
    """The epoch's permutation (seeded by the epoch), from `skip` samples on."""

    def __init__(self, epoch: int, skip: int) -> None:
        self.order = torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(1000 + epoch)).tolist()[skip:]

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--context", choices=["fork", "spawn"], default="fork")
    parser.add_argument("--persistent", action="store_true")
    parser.add_argument("--no-protect", action="store_true", help="without gracefulstop.torch.worker_init_fn (the failure)")
    parser.add_argument("--open-state-late", action="store_true", help="start the workers before gracefulstop traps signals")
    parser.add_argument("--step-seconds", type=float, default=0.05)
    args = parser.parse_args()
    checkpoint_path = os.path.join(args.dir, "checkpoint.pt")
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    epoch, done_in_epoch = 0, 0
    if os.path.exists(checkpoint_path):
        saved = torch.load(checkpoint_path)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        epoch, done_in_epoch = saved["epoch"], saved["done_in_epoch"]
        print(f"resumed at epoch {epoch}, sample {done_in_epoch}", flush=True)
    if not args.open_state_late:
        gracefulstop.install_signals()
    state = None
    seen = open(os.path.join(args.dir, "seen.jsonl"), "a")  # noqa: SIM115 - appended to for the whole training
    while epoch < EPOCHS:
        # The one line the README gives (or, for the failure, PyTorch's own defaults).
        options = {"multiprocessing_context": args.context} if args.no_protect else gst.loader_options(args.context)
        loader = DataLoader(
            Squares(), batch_size=BATCH, sampler=ResumableSampler(epoch, done_in_epoch), num_workers=2, persistent_workers=args.persistent, **options
        )
        batches = iter(loader)  # the workers start here
        if state is None:
            # Traps the stop signals (if not yet); under gstop, the state it made (a sweep's: no units).
            state_dir = os.environ.get("GRACEFULSTOP_STATE_DIR")
            state = gracefulstop.open_sweep(state_dir) if state_dir else gracefulstop.open(None)
            print("ready", flush=True)
        for indices, x, y in batches:
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            time.sleep(args.step_seconds)
            done_in_epoch += len(indices)
            seen.write(json.dumps({"epoch": epoch, "indices": indices.tolist(), "pid": os.getpid()}) + "\n")
            seen.flush()
            if state.should_stop():
                torch.save(
                    {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "done_in_epoch": done_in_epoch},
                    checkpoint_path + ".tmp",
                )
                os.replace(checkpoint_path + ".tmp", checkpoint_path)
                print(f"stopped ({state.stop_reason().detail}) at epoch {epoch}, sample {done_in_epoch}; checkpoint written", flush=True)
                del batches, loader  # the loader shuts its workers down
                return 0
        epoch, done_in_epoch = epoch + 1, 0
        del batches, loader
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "done_in_epoch": 0}, checkpoint_path)
    open(os.path.join(args.dir, "finished"), "w").close()
    if state is not None and state.path:
        state.mark_study_done("training finished")  # gstop: all work done, no requeue
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
