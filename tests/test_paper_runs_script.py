"""tools/paper-runs.sh, the queue of the paper-scale runs: its commands are ones the command line
accepts, with configuration keys the experiments have, and it starts each folder from the
committed results. Run with a stand-in ``python`` that records its arguments (no training)."""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from penaltyprop.cli import build_parser
from penaltyprop.experiments.run import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "paper-runs.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("nice") is None,
                                reason="needs bash and nice")


def run_script(tmp_path, status=0):
    """Run the script with a ``python`` that appends its arguments to a file and exits with
    ``status``; returns (the recorded argument lists, the script's exit status)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    stub = bin_dir / "python"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(calls))}\nexit {status}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out_root = tmp_path / "runs"
    done = subprocess.run(["bash", str(SCRIPT), "data", str(out_root)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.split() for line in lines], done.returncode, out_root


def test_every_command_parses_and_names_cells_the_experiment_has(tmp_path):
    calls, status, out_root = run_script(tmp_path)
    assert status == 0
    assert len(calls) == 5
    parser = build_parser()
    for argv in calls:
        assert argv[:2] == ["-m", "penaltyprop"]
        args = parser.parse_args(argv[2:])  # exits (SystemExit) on an option the CLI lacks
        assert args.command == "experiment" and args.scale == "paper"
        assert Path(args.out).parent == out_root and args.data_dir == Path("data")
        if args.cells:
            known = EXPERIMENTS[args.name].cells(args.cg_variant or "textbook")
            assert set(args.cells) <= set(known), set(args.cells) - set(known)


def test_folders_start_from_the_committed_results(tmp_path):
    _, _, out_root = run_script(tmp_path)
    for name, committed in [("figure3-paper-cnn-authors", "figure3-paper-cnn-authors"),
                            ("figure2-paper-seeds", "figure2-paper")]:
        source = ROOT / "docs" / "results" / f"{committed}.json"
        if source.exists():
            assert (out_root / name / "results.json").read_bytes() == source.read_bytes()


def test_an_interrupted_run_stops_the_queue(tmp_path):
    calls, status, _ = run_script(tmp_path, status=130)
    assert status == 130 and len(calls) == 1
