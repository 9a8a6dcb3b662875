import subprocess
import sys

from fsc_clip.cli.main import COMMANDS, main


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
