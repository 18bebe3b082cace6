"""What a new user reads and types first: the README's commands, as CI runs them, and
``compare`` on the folders people point it at."""

import re
from pathlib import Path

import pytest

from conftest import REPO
from mnist_lab.compare import main as compare_main

EXPORT = 'export MNIST_LAB_DATA="$(realpath ../shared/mnist)" && '


def test_compare_skips_folders_that_hold_no_run(short_run, tmp_path, capsys):
    refused = tmp_path / "refused"
    (refused / ".hydra").mkdir(parents=True)
    (refused / "run.log").write_text("")
    inside = [str(p) for p in short_run.iterdir()]  # what outputs/*/* also names: files, plots/
    assert any(Path(p).is_dir() for p in inside) and any(Path(p).is_file() for p in inside)
    assert compare_main([str(short_run), *inside, str(refused), str(tmp_path / "typo"),
                         str(short_run)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count(str(short_run)) == 1 and "completed" in captured.out
    notes = captured.err.strip().splitlines()
    assert notes == [f"skipped '{refused}': not a run or sweep (no summary.json, metrics.csv "
                     "or checkpoint.pt)", f"skipped '{tmp_path / 'typo'}': no such directory"]
    assert compare_main([str(refused)]) == 2

def readme_command(heading: str) -> str:
    """The one-line command in the ```bash block after the README line starting with
    ``heading``."""
    text = (REPO / "README.md").read_text()
    match = re.search(re.escape(heading) + r".*?```bash\n(.+?)\n```", text, re.S)
    assert match, f"no command after {heading!r} in README.md"
    return match.group(1)

def test_ci_runs_the_readme_test_command_exactly_as_written():
    command = readme_command("Pass the tests")
    assert command.startswith(EXPORT) and command.endswith("&& python -m pytest")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines, ".ci/run must run the README's test command as written"

def test_readme_main_command_exports_the_data_root_then_runs_run_py():
    """Both commands export the absolute data root for the shell they run in, so that
    every later README command finds the data from any folder (issue 16)."""
    command = readme_command("Run the main job")
    assert command.startswith(EXPORT) and command.endswith("&& python run.py")
    assert "pip install -c constraints.txt" in command

def test_readme_quotes_what_a_shell_would_expand():
    """zsh expands ``[...]``: every README override with brackets is quoted."""
    text = (REPO / "README.md").read_text()
    for line in re.findall(r"^(?:python|\$ python) .*$", text, re.M):
        for word in re.findall(r"(?<=\s)[\w.]+=\[[^\s']*", line):
            pytest.fail(f"unquoted {word!r} in README line: {line}")
    run_doc = Path(REPO / "run.py").read_text().split('"""')[1]
    assert not re.search(r"(?<=\s)[\w.]+=\[", run_doc), "run.py's docstring"
