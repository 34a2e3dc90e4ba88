"""`gstop doctor` inside real SLURM jobs (scripts/slurm-cluster) with good and bad sbatch lines: it
reads the job's submit line, batch script and Requeue from scontrol and says what is wrong and how
to fix it; and on a login node, from the batch script alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import GSTOP, child_environment

import gracefulstop


def run_doctor_in_a_job(cluster, directory: Path, state: Path, script_body: str, *sbatch_args: str) -> tuple[dict, int]:
    """Submits a batch script whose first command is `gstop doctor --json`, waits for it to end;
    returns the report and doctor's exit status."""
    script = directory / "job.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --output={directory}/slurm-%j.out\n{script_body}"
        f"{GSTOP} doctor --json --state {state} > {directory}/doctor.json; echo $? > {directory}/doctor.status\n"
    )
    job = cluster.command("sbatch", "--parsable", *sbatch_args, str(script)).strip()
    cluster.wait(
        f"job {job}'s doctor report",
        lambda: (directory / "doctor.status").exists() and (directory / "doctor.status").read_text().strip() != "",
        timeout=120,
    )
    return json.loads((directory / "doctor.json").read_text()), int((directory / "doctor.status").read_text())


def by_check(report: dict) -> dict[str, list[dict]]:
    checks: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        checks.setdefault(finding["check"], []).append(finding)
    return checks


def test_a_well_set_up_job_passes(cluster, tmp_path):
    state = tmp_path / "state"
    gracefulstop.create(state, [f"u{i}" for i in range(4)], nodes=1)
    report, status = run_doctor_in_a_job(cluster, tmp_path, state, "#SBATCH --signal=B:USR1@300\n", "--requeue", "--ntasks=1")
    checks = by_check(report)
    assert status == 0 and report["ok"], report
    assert checks["signal"][0]["status"] == "ok" and "300-360 s" in checks["signal"][0]["message"]
    assert checks["requeue"][0]["status"] == "ok" and checks["scontrol"][0]["status"] == "ok"
    assert checks["tasks"][0]["status"] == "ok"
    # The test cluster's /tmp is this machine's local disk: doctor says so (one node: a warning).
    assert checks["state directory"][0]["status"] == "warning" and "only this node sees" in checks["state directory"][0]["message"]


def test_a_badly_set_up_job_gets_each_problem_named_with_its_fix(cluster, tmp_path):
    state = tmp_path / "state"
    gracefulstop.create(state, [f"u{i}" for i in range(4)], nodes=1)
    (tmp_path / "train.py").write_text("import lightning as L\n")
    body = "#SBATCH --signal=USR1@20\ntrap 'touch stop.flag' USR1\n"
    # --signal and the trap in the script; --no-requeue and two tasks on sbatch's command line
    # (scontrol shows them as Requeue=0 and NumTasks=2; SLURM 22.05 does not show the line itself).
    report, status = run_doctor_in_a_job(cluster, tmp_path, state, body, "--no-requeue", "--ntasks=2")
    checks = by_check(report)
    assert status == 65 and not report["ok"], report
    assert checks["signal"][0]["status"] == "warning" and checks["signal"][0]["fix"] == "--signal=B:USR1@20"
    assert checks["warning lead"][0]["status"] == "warning"
    assert checks["requeue"][0]["status"] == "problem" and "Requeue=0" in checks["requeue"][0]["message"]
    assert checks["tasks"][0]["status"] == "problem" and checks["tasks"][0]["fix"].startswith("gstop init --nodes 2")
    assert checks["exec"][0]["status"] == "warning"
    assert any("touch stop.flag" in f["message"] for f in checks["competing handler"])


def test_on_a_login_node_it_reads_the_batch_script(tmp_path):
    script = tmp_path / "job.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --time=04:00:00 --requeue\n#SBATCH --signal=B:USR1@300\nexec gstop run -- python train.py\n")
    (tmp_path / "train.py").write_text("import lightning as L\ntrainer = L.Trainer()\n")
    env = child_environment()
    env.pop("SLURM_JOB_ID", None)
    result = subprocess.run([GSTOP, "doctor", "--state", str(tmp_path / "state"), str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr  # warnings only
    assert "ok       signal: --signal=B:USR1@300 reaches gstop" in result.stdout
    assert "train.py uses Lightning without gracefulstop.lightning.GracefulStop" in result.stdout
    assert "fix: Trainer(callbacks=[gracefulstop.lightning.GracefulStop(\"stop.ckpt\")])" in result.stdout
    missing = subprocess.run([GSTOP, "doctor", str(tmp_path / "nope.sbatch")], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 64 and "nope.sbatch does not exist" in missing.stderr


def test_it_names_torchrun_under_gstops_usr1(tmp_path):
    env = child_environment()
    env.pop("SLURM_JOB_ID", None)
    script = tmp_path / "ddp.sbatch"
    for line, expected in (
        ("exec gstop run --state s -- torchrun --nproc_per_node 2 train.py", 65),
        ("exec gstop run --child-signal none --state s -- torchrun --nproc_per_node 2 train.py", 0),
    ):
        script.write_text(f"#!/bin/bash\n#SBATCH --signal=B:USR1@300 --requeue\n{line}\n")
        result = subprocess.run(
            [GSTOP, "doctor", "--json", "--state", str(tmp_path / "state"), str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == expected, result.stdout + result.stderr
        torchrun = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "torchrun"]
        assert (len(torchrun) == 1 and "--child-signal none" in torchrun[0]["fix"]) if expected else not torchrun
