"""``benchmark --peers``: other packages' blocks and whole training steps, measured in the same run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cbam3d.attention.registry import attention_names
from cbam3d.benchmark import peers
from cbam3d.benchmark.peers import peer_cases
from cbam3d.benchmark.reports import peer_table
from cbam3d.benchmark.runs import PRESETS, run_peers
from cbam3d.models import count_parameters

TINY = replace(
    PRESETS["quick"],
    peer_shape_3d=(2, 16, 2, 6, 6),
    peer_shape_2d=(2, 16, 6, 6),
    kernel_size=3,
    repeats=1,
    warmup=0,
    compile_blocks=False,
    step_model="resnet3d-10",
    step_clip=(2, 3, 4, 32, 32),
    step_repeats=1,
)


def test_peers_do_the_same_work_as_cbam3d():
    """Every installed peer has cbam3d's parameter count, but timm's CBAM, whose MLP has no biases."""
    for case in peer_cases((2, 64, 2, 6, 6), (2, 64, 6, 6), 7):
        for peer in case.peers:
            pytest.importorskip(peer.package)
            ours, theirs = count_parameters(case.ours), count_parameters(peer.make(case.shape[1]))
            biases = case.ours.channel_gate.channels + 64 // 16 if peer.name == "timm CbamModule" else 0
            assert theirs == ours - biases, peer.name


def test_peers_and_training_steps_are_measured_with_missing_peers_noted(monkeypatch):
    """One run measures each installed peer beside cbam3d, notes the peers left out, and times a training
    step of the network plain and with every attention, with ratios against the plain network."""
    pytest.importorskip("monai")
    pytest.importorskip("timm")
    monkeypatch.setattr(peers, "is_installed", lambda package: package != "fvcore")
    notes = []
    results = run_peers(TINY, notes.append)
    variants = {(r.case, r.variant) for r in results}
    assert {("se 3d", "naive"), ("se 3d", "monai ChannelSELayer"), ("se 3d", "cbam3d")} <= variants
    assert {("cbam 2d k=3", "timm CbamModule"), ("eca 2d", "timm EcaModule"), ("eca 2d", "cbam3d")} <= variants
    assert ("se 3d", "fvcore SqueezeExcitation") not in variants
    assert any("fvcore SqueezeExcitation skipped" in note for note in notes)
    steps = {r.variant: r for r in results if r.case == "resnet3d-10 step"}
    assert set(steps) == {"plain", *attention_names()}
    assert steps["plain"].ratios["vs plain:train_speedup"] == 1.0
    assert all(r.train_ms > 0 for r in steps.values())
    assert "| eca 2d | timm EcaModule | 2x16x6x6 |" in peer_table(results)
