"""The examples run as shipped: the "run" example under gstop in local mode, resuming work the old
scripts had finished."""
from __future__ import annotations

import shutil
import subprocess

from conftest import GSTOP, REPOSITORY, child_environment


def test_the_run_example_under_gstop_honours_old_markers_and_finishes(tmp_path):
    for name in ("run_equations.py", "run_equations.sbatch"):
        shutil.copy(REPOSITORY / "examples" / "run" / name, tmp_path)
    equations = [f"eq_{i}" for i in range(1, 21)]
    (tmp_path / "equations.txt").write_text("\n".join(equations) + "\n")
    (tmp_path / "logs" / "completed").mkdir(parents=True)
    for done in ("eq_1", "eq_2", "eq_3"):  # finished by the old scripts
        (tmp_path / "logs" / "completed" / f"{done}.done").touch()
    result = subprocess.run([GSTOP, "run", "--state", str(tmp_path / "state"), "--", "python3", "run_equations.py", "equations.txt"],
                            cwd=tmp_path, env=child_environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "all work is done (run.done)" in result.stderr
    assert sorted(p.stem for p in (tmp_path / "results").iterdir()) == sorted(equations[3:])  # old ones not redone
    commands = [line for line in (tmp_path / "run_equations.sbatch").read_text().splitlines() if not line.startswith("#")]
    assert len(commands) == 1 and commands[0].startswith("exec gstop run --state")  # no trap, no flag file
