import argparse
import os
import subprocess
import sys

import pytest

from fsc_clip.cli.main import COMMANDS, HelpFormatter, build_command_parser, main, shows_default, suggested_threads


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsc_clip.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands_without_importing_torch():
    code = (
        "import sys\nfrom fsc_clip.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'help imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name in COMMANDS:
        assert name in proc.stdout


def test_console_help_subprocess():
    proc = _run("--help")
    assert proc.returncode == 0 and "list" in proc.stdout


def test_list_models_subprocess():
    proc = _run("list", "models")
    assert proc.returncode == 0, proc.stderr
    assert "fsc-tiny" in proc.stdout and "ViT-B-32" in proc.stdout and "openai" in proc.stdout


def test_unknown_command_is_an_error(capsys):
    try:
        rc = main(["no-such-command"])
    except SystemExit as err:
        rc = err.code
    assert rc == 2


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name):
    """For ALL commands: every option and positional is described; a non-None default is printed in --help."""
    _module, parser = build_command_parser(name)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), f"{name} {flag}: no help"
        shown = formatter._expand_help(action)  # the text --help prints for this option
        if shows_default(action):
            assert f"default: {action.default}" in shown, f"{name} {flag}: default {action.default!r} not shown"
    assert f"usage: fsc-clip {name}" in parser.format_help()


def test_help_formatter_rule():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--n", type=int, default=3, help="a number")
    parser.add_argument("--name", help="no default")
    parser.add_argument("--flag", action="store_true", help="a flag")
    parser.add_argument("--items", action="append", default=[], help="repeatable")
    text = " ".join(parser.format_help().split())
    assert "a number (default: 3)" in text
    assert "no default (default" not in text and "a flag (default" not in text and "repeatable (default" not in text


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.3, None), (2, 1.0, 1), (2, 2.8, 1), (2, 7.0, 1), (16, 0.2, None), (16, 4.0, 12), (16, 15.6, 1), (1, 3, 1)],
)
def test_suggested_threads(cores, load, expected):
    assert suggested_threads(cores, load) == expected


def test_threads_follow_the_load_and_never_override_omp_num_threads():
    """Subprocesses with a faked 1-minute load (os.getloadavg patched at the OS boundary, before main runs)."""
    code = (
        "import os, sys, logging\n"
        "os.getloadavg = lambda: (float(sys.argv[1]), 0.0, 0.0)\n"
        "os.sched_getaffinity = lambda pid: {0, 1}\n"
        "from fsc_clip.cli import main as m\n"
        "m._setup_logging(); m.configure_threads()\n"
        "import torch\n"
        "print('threads', torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    busy = subprocess.run([sys.executable, "-c", code, "3.5"], capture_output=True, text=True, timeout=120, env=env)
    assert "threads 1 1" in busy.stdout, busy.stdout + busy.stderr
    assert "machine is busy (load 3.5 on 2 cores): using 1 torch thread(s)" in busy.stderr
    idle = subprocess.run([sys.executable, "-c", code, "0.1"], capture_output=True, text=True, timeout=120, env=env)
    assert "threads" in idle.stdout and "None" in idle.stdout and "busy" not in idle.stderr, idle.stdout + idle.stderr
    env["OMP_NUM_THREADS"] = "2"
    explicit = subprocess.run([sys.executable, "-c", code, "9"], capture_output=True, text=True, timeout=120, env=env)
    assert "threads 2 2" in explicit.stdout and "busy" not in explicit.stderr, explicit.stdout + explicit.stderr


def test_output_into_a_closed_pipe_is_quiet():
    """`fsc-clip list models | head -1`: the reader leaves early; no BrokenPipeError traceback, exit 0."""
    import subprocess
    import sys

    # `true` never reads, so the pipe is closed before our first write: EPIPE every time, not by chance.
    cmd = f"set -o pipefail; {sys.executable} -m fsc_clip.cli list models | true"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
