"""The conv-weight history keeps within its memory cap by keeping fewer snapshots."""

import torch

from mnist_lab.training.snapshots import WeightsHistory


def test_history_thins_evenly_past_its_cap(caplog):
    weights = [(torch.zeros(4, 1, 5, 5), torch.zeros(4))]  # 416 bytes a snapshot
    history = WeightsHistory(max_bytes=416 * 10)
    for step in range(100, 10_100, 100):  # 100 evaluations
        weights[0][0].fill_(step)
        history.offer(step, weights)
    assert history.nbytes <= 416 * 10
    steps = history.steps
    assert steps[0] == 100 and len(set(b - a for a, b in zip(steps, steps[1:]))) == 1
    state = history.state_dict()
    assert state["weights"][0].shape == (len(steps), 4, 1, 5, 5)
    assert state["weights"][0][:, 0, 0, 0, 0].tolist() == [float(s) for s in steps]
    assert "keeping every" in caplog.text


def test_resumed_history_continues_like_an_uninterrupted_one():
    weights = [(torch.zeros(2, 1, 3, 3), torch.zeros(2))]
    straight, first = WeightsHistory(10_000), WeightsHistory(10_000)
    for step in range(1, 21):
        weights[0][0].fill_(step)
        straight.offer(step, weights)
        if step <= 12:
            first.offer(step, weights)
    resumed = WeightsHistory(10_000)
    resumed.load_state_dict(first.state_dict(), until_step=10, offered=10)
    for step in range(11, 21):
        weights[0][0].fill_(step)
        resumed.offer(step, weights)
    assert resumed.steps == straight.steps
    assert torch.equal(resumed.state_dict()["weights"][0], straight.state_dict()["weights"][0])
