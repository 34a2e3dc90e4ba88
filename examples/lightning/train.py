"""A Lightning trainer that stops cleanly at a step when the time-limit warning comes, with a
checkpoint, and resumes from it on the next attempt; gstop alone requeues (Lightning's own SLURM
auto-requeue is switched off by the callback). Run under gstop (train.sbatch)."""
import argparse
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import gracefulstop.lightning

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--step-seconds", type=float, default=0.0, help="pretend each step trains this long")
args = parser.parse_args()


class Line(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_index):
        time.sleep(args.step_seconds)
        inputs, targets = batch
        return torch.nn.functional.mse_loss(self.layer(inputs), targets)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


x = torch.linspace(0, 1, 256).unsqueeze(1)
stop = gracefulstop.lightning.GracefulStop("stop.ckpt")  # stops at a step with this checkpoint
trainer = L.Trainer(max_steps=args.steps, callbacks=[stop], logger=False, enable_checkpointing=False, enable_progress_bar=False)
trainer.fit(Line(), DataLoader(TensorDataset(x, 3 * x + 1), batch_size=16),
            ckpt_path=gracefulstop.lightning.resume_from("stop.ckpt"))  # None on the first attempt
if stop.stopped:
    print(f"stopped at step {trainer.global_step}: {stop.stopped.detail}")
else:
    gracefulstop.default_state().mark_study_done(f"{args.steps} steps")  # gstop: done, no requeue
    print(f"trained {trainer.global_step} steps")
