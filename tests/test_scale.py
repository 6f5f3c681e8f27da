"""Past one device (course_utils.scale, chapter 08): real processes, on this machine's CPUs."""

import pytest

from course_utils import memory, scale

TINY = memory.Shape("tiny-llama", hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
                    vocab=256)


def test_two_fsdp_processes_hold_what_the_calculator_predicts():
    """FSDP2 over gloo: each of 2 ranks holds half the weights, gradients and AdamW state,
    to the byte, as memory.estimate(..., devices=2, sharding='fsdp') says."""
    reports = scale.measure_fsdp_shards(TINY, processes=2)
    predicted = memory.estimate(TINY, "full", precision="fp32", devices=2, sharding="fsdp")
    assert [r["rank"] for r in reports] == [0, 1] and {r["world"] for r in reports} == {2}
    for report in reports:
        assert report["weights"] == predicted.weights == TINY.n_params * 4 / 2
        assert report["gradients"] == predicted.gradients
        assert report["optimizer"] == predicted.optimizer == TINY.n_params * 8 / 2
    assert reports[0]["loss"] != reports[1]["loss"]  # each rank trained on its own batch


def test_bad_process_counts_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        scale.measure_fsdp_shards(TINY, processes=0)
