"""Commands as a user types them: where records go, what a refused command leaves."""

import os
import re
from pathlib import Path

import pytest

from conftest import DATA_ROOT, REPO, run_py
from mnist_lab.compare import main as compare_main

pytestmark = pytest.mark.slow
TINY = ["trainer.max_steps=20", "trainer.eval_every=10", "optimizer.lr=0.05",
        "trainer.progress=false", "logger=none"]


def test_a_refused_command_leaves_no_folder_behind(tmp_path):
    result = run_py("model.depth=[]", *TINY, cwd=tmp_path)
    assert result.returncode == 2 and "Invalid config value model.depth=[]" in result.stderr
    assert list(tmp_path.iterdir()) == [], "Hydra's folder of a refused command was left"


def test_a_run_ends_by_printing_its_record_folder_with_paths_from_the_launch_directory(tmp_path):
    """``hydra.job.chdir=true`` runs the job in its folder; a relative data.root still
    means the folder relative to where the command was launched."""
    root = os.path.relpath(DATA_ROOT, tmp_path)
    result = run_py("hydra.job.chdir=true", f"data.root={root}", "data.download=false", *TINY,
                    "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = (tmp_path / "run").resolve()
    assert f"Run record: {run_dir}" in result.stdout + result.stderr
    made = {p.name for p in run_dir.iterdir()}
    assert made <= {".hydra", "run.log", "metrics.csv", "summary.json", "checkpoint.pt",
                    "best.pt", "weights_history.pt", "plots"}, made


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
    assert "MNIST_LAB_DATA=../shared/mnist" in command, "the relative form users type"
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines, ".ci/run must run the README's test command as written"


def test_readme_main_command_installs_and_runs():
    command = readme_command("Run the main job")
    assert command.endswith("&& MNIST_LAB_DATA=../shared/mnist python run.py"), \
        "the relative data root that a fresh clone beside ../shared has, as the tests use"
    assert "pip install -c constraints.txt" in command


def test_readme_quotes_what_a_shell_would_expand():
    """zsh expands ``[...]``: every README override with brackets is quoted."""
    text = (REPO / "README.md").read_text()
    for line in re.findall(r"^(?:python|\$ python) .*$", text, re.M):
        for word in re.findall(r"(?<=\s)[\w.]+=\[[^\s']*", line):
            pytest.fail(f"unquoted {word!r} in README line: {line}")
    run_doc = Path(REPO / "run.py").read_text().split('"""')[1]
    assert not re.search(r"(?<=\s)[\w.]+=\[", run_doc), "run.py's docstring"
