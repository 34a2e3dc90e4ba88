"""A small Lightning training job for the tests: 60 optimizer steps, each logged (global step and
attempt) to DIR/steps.jsonl. With --callback it uses gracefulstop.lightning.GracefulStop and resumes
from its checkpoint; without, Lightning alone (the failure). After fit() it waits --linger seconds
for a late warning, which must not kill it.

    python lightning_job.py DIR [--callback] [--linger SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import gracefulstop
import gracefulstop.lightning as gsl

STEPS = 60


class Model(L.LightningModule):
    def __init__(self, log_path: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.log_file = open(log_path, "a")  # noqa: SIM115 - the model's log, open as long as the model

    def training_step(self, batch, batch_index):
        x, y = batch
        time.sleep(0.05)
        self.log_file.write(json.dumps({"step": self.global_step, "attempt": os.environ.get("GRACEFULSTOP_RESTART_COUNT", "0")}) + "\n")
        self.log_file.flush()
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_train_start(self) -> None:
        print("training", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--callback", action="store_true")
    parser.add_argument("--linger", type=float, default=0.0)
    args = parser.parse_args()
    checkpoint = os.path.join(args.dir, "stop.ckpt")
    state_dir = os.environ.get("GRACEFULSTOP_STATE_DIR")
    state = gracefulstop.open_sweep(state_dir) if state_dir else gracefulstop.open(None)
    x = torch.linspace(0, 1, 64).unsqueeze(1)
    data = DataLoader(TensorDataset(x, 2 * x), batch_size=4)
    callbacks = [gsl.GracefulStop(checkpoint, state=state)] if args.callback else []
    trainer = L.Trainer(
        max_steps=STEPS,
        callbacks=callbacks,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Model(os.path.join(args.dir, "steps.jsonl")), data, ckpt_path=gsl.resume_from(checkpoint) if args.callback else None)
    print(f"fit returned at step {trainer.global_step}", flush=True)
    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        time.sleep(0.05)
    if args.linger:
        print("alive after lingering", flush=True)
    if trainer.global_step >= STEPS and state.path:
        state.mark_study_done("training finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
