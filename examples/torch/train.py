"""A PyTorch training loop that stops cleanly at a step when the time-limit warning comes (or
SLURM, scancel or gstop sends TERM to every process of the job), checkpoints, and resumes exactly
where it stopped on the next attempt. Run under gstop (train.sbatch)."""
import argparse
import os
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import gracefulstop
import gracefulstop.torch

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--step-seconds", type=float, default=0.0, help="pretend each step trains this long")
args = parser.parse_args()
EPOCHS, CHECKPOINT = args.epochs, "checkpoint.pt"
x = torch.linspace(0, 1, 512).unsqueeze(1)
data = TensorDataset(x, 3 * x + 1)
model = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
epoch, step = 0, 0
if os.path.exists(CHECKPOINT):  # a requeued attempt: go on from the stop
    saved = torch.load(CHECKPOINT)
    model.load_state_dict(saved["model"]), optimizer.load_state_dict(saved["optimizer"])
    epoch, step = saved["epoch"], saved["step"]

state = gracefulstop.default_state()  # $GRACEFULSTOP_STATE_DIR, set by gstop; traps the stop signals
while epoch < EPOCHS:
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
    batches = DataLoader(torch.utils.data.Subset(data, order[step * 32:].tolist()), batch_size=32, num_workers=2,
                         **gracefulstop.torch.loader_options())  # workers live through a TERM to the whole job
    for inputs, targets in batches:
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad(), loss.backward(), optimizer.step()
        time.sleep(args.step_seconds)
        step += 1
        if state.should_stop():  # the warning, a stop request, or the deadline
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step}, CHECKPOINT)
            print(f"stopped at epoch {epoch}, step {step}: {state.stop_reason().detail}; checkpoint written")
            raise SystemExit(0)  # gstop decides: requeue while work remains
    epoch, step = epoch + 1, 0
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": 0}, CHECKPOINT)
state.mark_study_done(f"{EPOCHS} epochs")  # gstop: the work is done, no requeue
with torch.no_grad():  # on the whole data: an attempt that resumed at an epoch's end trained no batch
    loss = torch.nn.functional.mse_loss(model(x), 3 * x + 1)
print(f"trained {EPOCHS} epochs: loss {loss.item():.4f}")
