"""The demo's side-by-side fine-tuning (``fsc_clip.demo.parallel``): real spawned worker processes, real training.

Runs trained two at a time must equal the same runs trained one after another (each uses one torch thread either
way), and a failing run must be named while the runs under way are kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsc_clip.config import from_dict
from fsc_clip.demo.parallel import RunFailedError, RunJob, run_progress, train_side_by_side
from fsc_clip.training import TrainConfig


def _job(data: dict[str, Path], out: Path, name: str, loss: str, seed: int, steps: int = 4) -> RunJob:
    cfg = from_dict(
        TrainConfig,
        {
            "model": {"name": "fsc-tiny", "pretrained": None, "augment": False},
            "data": {
                "train_data": str(data["tsv"]),
                "precomputed_negatives": str(data["negatives"]),
                "negatives": "negclip" if loss == "negclip" else None,
            },
            "loss": {"loss_name": loss},
            "optim": {"lr": 1e-3, "warmup": 1, "epochs": 1, "batch_size": 8, "precision": "fp32", "max_steps": steps},
            "logging": {"every_n_steps": 1, "progress": False, "tensorboard": False},
            "checkpoint": {"every_n_epochs": 0, "every_n_steps": 0},
            "seed": seed,
            "output": str(out),
            "name": name,
            "device": "cpu",
        },
    )
    return RunJob(name, cfg, out / name, steps)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True, map_location="cpu")["state_dict"]


@pytest.mark.slow
def test_runs_side_by_side_equal_runs_one_after_another(toy_data, tmp_path: Path):
    specs = [("clip-ft", "clip", 0), ("negclip", "negclip", 1), ("negclip-s2", "negclip", 2)]
    results = {}
    for workers in (2, 1):
        out = tmp_path / f"w{workers}"
        jobs = [_job(toy_data, out, *spec) for spec in specs]
        done: list[tuple[str, float]] = []
        polls: list[tuple[list[str], list[str]]] = []

        def on_done(job: RunJob, seconds: float, done=done) -> None:
            done.append((job.name, seconds))

        def on_poll(finished: list[RunJob], running: list[RunJob], polls=polls) -> None:
            polls.append(([j.name for j in finished], [j.name for j in running]))

        train_side_by_side(jobs, workers, on_done=on_done, on_poll=on_poll)
        assert sorted(name for name, _ in done) == sorted(s[0] for s in specs) and all(s > 0 for _, s in done)
        assert polls and polls[-1][0] and len(polls[-1][0]) == len(specs)  # a poll after each finished run
        assert all(run_progress(j) == j.total_steps for j in jobs)  # metrics.jsonl of each run: its last step
        results[workers] = {j.name: _weights(j.run_dir) for j in jobs}
    for name, want in results[1].items():
        got = results[2][name]
        assert all(torch.equal(got[k], want[k]) for k in want), name  # bit-identical: one thread per run either way
    a, b = results[1]["negclip"], results[1]["negclip-s2"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # other seeds differ: the equality above is not trivial


@pytest.mark.slow
def test_a_failing_run_is_named_and_the_run_under_way_is_kept(toy_data, tmp_path: Path):
    good = _job(toy_data, tmp_path, "good", "clip", 0, steps=6)
    broken_data = {**toy_data, "tsv": tmp_path / "missing.tsv"}
    bad = _job(broken_data, tmp_path, "bad", "clip", 0)
    later = _job(toy_data, tmp_path, "later", "clip", 1)
    done: list[str] = []
    with pytest.raises(RunFailedError, match=r"fine-tuning run bad: .*missing\.tsv"):
        train_side_by_side([good, bad, later], 2, on_done=lambda j, _sec: done.append(j.name))
    assert "good" in done and (good.run_dir / "checkpoints" / "latest.pt").is_file()  # finished, not lost
    assert "bad" not in done


@pytest.mark.slow
def test_a_script_without_a_main_guard_can_train_side_by_side(toy_data, tmp_path: Path):
    """Workers are fresh interpreters running ``fsc_clip.demo.worker``, not ``multiprocessing`` children that
    re-import the caller's ``__main__``: a plain script (no ``if __name__ == "__main__":``) works."""
    import subprocess
    import sys

    script, paths = tmp_path / "plain_script.py", {k: str(v) for k, v in toy_data.items()}
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_parallel_runs import _job\n"
        "from fsc_clip.demo.parallel import train_side_by_side\n"
        f"data = {{k: Path(v) for k, v in {paths!r}.items()}}\n"
        f"out = Path({str(tmp_path / 'runs')!r})\n"
        "jobs = [_job(data, out, 'a', 'clip', 0, steps=2), _job(data, out, 'b', 'clip', 1, steps=2)]\n"
        "train_side_by_side(jobs, 2, on_done=lambda job, sec: print('done', job.name, flush=True))\n",
        encoding="utf-8",
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(line for line in proc.stdout.splitlines() if line.startswith("done")) == ["done a", "done b"]
    assert (tmp_path / "runs" / "a" / "checkpoints" / "latest.pt").is_file()
    assert "found in sys.modules" not in proc.stderr  # the workers' runpy warning (see the next test)


def test_a_worker_starts_without_runpy_warning(tmp_path: Path):
    """``python -m`` on a module that its package already imported runs it twice and warns (``fsc_clip.demo`` imports
    ``fsc_clip.demo.parallel``): workers start from ``fsc_clip.demo.worker``, which nothing imports."""
    import subprocess
    import sys

    stop = tmp_path / "stop"
    stop.touch()  # the worker stops before its first run
    command = [sys.executable, "-m", "fsc_clip.demo.worker", str(stop), str(tmp_path / "demo_job.json")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "found in sys.modules" not in proc.stderr, proc.stderr[-3000:]


def test_a_run_whose_process_died_is_named_with_where_to_resume(tmp_path: Path):
    from fsc_clip.demo.parallel import _failure

    job = RunJob("negclip", None, tmp_path / "negclip", 400)  # no demo_error.json: the process left no error record
    error = _failure(job, -9)
    assert isinstance(error, RunFailedError)
    assert "negclip" in str(error) and "exit code -9" in str(error) and str(job.run_dir) in str(error)
