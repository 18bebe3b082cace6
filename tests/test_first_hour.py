"""A new user's first hour (issue 16): a run says what it will do, its log lines say
where it is and how long is left, and evaluate reads the data where the run recorded it."""

import re

from conftest import SHORT, run_training
from mnist_lab.evaluate import main as evaluate_main


def test_a_run_says_what_it_will_do_and_logs_step_epoch_rate_and_time_left(tmp_path, caplog):
    caplog.set_level("INFO")
    run_training(tmp_path, [*SHORT, "trainer.num_threads=1"])
    lines = [r.getMessage() for r in caplog.records]
    banner = next(line for line in lines if "parameters);" in line)
    assert banner == ("ConvNet (207,258 parameters); 300 steps (trainer.max_steps; 20 epochs "
                      "would be 640, batch 64); 2,000 training images; cpu, 1 thread; "
                      f"record in {tmp_path}")
    evaluations = [line for line in lines if line.startswith("step ")]
    pattern = (r"step +(\d+)/300  epoch +(\d+\.\d\d)/20  train/error .*  "
               r"[\d,]+ images/s  ETA (\d+)s$")
    found = [re.match(pattern, line) for line in evaluations]
    assert all(found), evaluations
    assert [(int(m[1]), m[2]) for m in found] == [(100, "3.12"), (200, "6.25"), (300, "9.38")]
    assert found[-1][3] == "0"  # nothing left at the last step


def test_evaluate_reads_the_data_where_the_run_recorded_it(short_run, capsys, monkeypatch):
    """Without the variables the run's config resolved its data root from, and without
    --data-root: the recorded root is the one read."""
    for name in ("MNIST_LAB_TINY_DATA", "MNIST_LAB_DATA"):
        monkeypatch.delenv(name, raising=False)
    assert evaluate_main([str(short_run)]) == 0
    assert "(equal)" in capsys.readouterr().out
