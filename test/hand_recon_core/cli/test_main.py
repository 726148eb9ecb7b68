"""The hand-recon console command."""

from __future__ import annotations

import subprocess
import sys

from hand_recon_core.cli.main import SUBCOMMANDS, build_parser, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("synth", "train", "eval", "infer", "bench", "export", "ros-demo"):
        assert name in SUBCOMMANDS
        assert name in out


def test_unknown_subcommand_is_a_usage_error():
    parser = build_parser()
    try:
        parser.parse_args(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("argparse accepted an unknown subcommand")


def test_console_module_runs_as_a_program():
    proc = subprocess.run([sys.executable, "-m", "hand_recon_core.cli.main", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "bench" in proc.stdout


def test_building_the_parser_does_not_import_torch():
    """`hand-recon --help` must stay instant: subcommand and benchmark modules import torch lazily."""
    code = ("import sys; from hand_recon_core.cli.main import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
