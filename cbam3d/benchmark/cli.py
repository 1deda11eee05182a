"""Speed and memory of cbam3d's SE, CBAM and BAM against hand-written blocks and the plain network.

Not imported by ``import cbam3d``; :func:`benchmark_main` is the command line (``scripts/benchmark.py``).
What it measures, for each case, side by side in one run (the repeats of all variants are interleaved, so
that noise from other processes hits every variant alike):

- ``forward_ms``: the median time of a forward pass (training mode, autograd recording);
- ``train_ms``: the median time of forward + backward (the input requires grad, as inside a network);
- ``saved``: the bytes the forward pass keeps for backward, counted with
  ``torch.autograd.graph.saved_tensors_hooks`` over unique storages, parameters and buffers excluded;
  for a block it is reported as a multiple of its input's size, for a network as the increase over the
  network without attention;
- ``peak_mb`` (CUDA only): the peak memory allocated during a training step, above what was allocated
  before it.

The naive references (:class:`NaiveSE`, :class:`NaiveCBAM`, :class:`NaiveBAM`) are the well-known 2D
code lifted to N-d: adaptive average / max pools, a 1x1 conv MLP, the concatenation of the channel max
and mean, a conv with BatchNorm, sigmoids and broadcast multiplies, all plain autograd. They compute the
same function as cbam3d's module they are built from (:func:`naive_like` copies the weights), so the
comparison is between two implementations of one block.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from cbam3d.attention.bam import BAM
from cbam3d.attention.cbam import CBAM
from cbam3d.attention.channel import ChannelGate
from cbam3d.attention.dims import ADAPTIVE_AVG_POOL, ADAPTIVE_MAX_POOL, BATCH_NORM, CONV
from cbam3d.attention.eca import ECA
from cbam3d.attention.registry import attention_names, create_attention, get_attention
from cbam3d.attention.spatial import SpatialGate
from cbam3d.models import create_model

from .peers import PeerCase, is_installed, peer_cases


# --- the hand-written references -----------------------------------------------------------------
def _conv_mlp(linear_in: nn.Linear, linear_out: nn.Linear, dims: int, norm: nn.Module | None = None) -> nn.Sequential:
    """The 1x1(x1) conv MLP equal to two Linear layers (with an optional norm between them)."""
    layers = []
    for linear in (linear_in, linear_out):
        conv = CONV[dims](linear.in_features, linear.out_features, 1)
        conv.weight.data.copy_(linear.weight.reshape(conv.weight.shape))
        conv.bias.data.copy_(linear.bias)
        layers.append(conv)
    middle = [norm, nn.ReLU(inplace=True)] if norm is not None else [nn.ReLU(inplace=True)]
    return nn.Sequential(layers[0], *middle, layers[1])


class NaiveSE(nn.Module):
    """Hand-written SE: AdaptiveAvgPool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid -> x * w."""

    def __init__(self, se: ChannelGate) -> None:
        super().__init__()
        self.pool = ADAPTIVE_AVG_POOL[se.dims](1)
        self.mlp = _conv_mlp(se.mlp[0], se.mlp[2], se.dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(self.pool(x)))


class NaiveCBAM(nn.Module):
    """Hand-written CBAM: ``mlp(avgpool x) + mlp(maxpool x)`` -> sigmoid -> ``y = x * Mc``; then
    ``cat(max_c y, mean_c y)`` -> conv -> BatchNorm -> sigmoid -> ``y * Ms``."""

    def __init__(self, cbam: CBAM) -> None:
        super().__init__()
        gate, spatial = cbam.channel_gate, cbam.spatial_gate
        is_default = gate.pool_types == ("avg", "max") and cbam.gate_order == "channel_spatial"
        if not is_default or not isinstance(spatial, SpatialGate):
            raise ValueError(
                "NaiveCBAM reproduces the default CBAM: avg and max pools, a joint spatial gate, channel first"
            )
        dims = cbam.dims
        self.avg_pool, self.max_pool = ADAPTIVE_AVG_POOL[dims](1), ADAPTIVE_MAX_POOL[dims](1)
        self.mlp = _conv_mlp(gate.mlp[0], gate.mlp[2], dims)
        padding = tuple(k // 2 for k in spatial.kernel_size)
        self.conv = CONV[dims](2, 1, spatial.kernel_size, padding=padding, bias=False)
        self.bn = BATCH_NORM[dims](1, eps=1e-5, momentum=0.01)
        self.conv.load_state_dict(spatial.conv.state_dict())
        self.bn.load_state_dict(spatial.bn.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.sigmoid(self.mlp(self.avg_pool(x)) + self.mlp(self.max_pool(x)))
        descriptor = torch.cat([torch.max(y, dim=1, keepdim=True)[0], torch.mean(y, dim=1, keepdim=True)], dim=1)
        return y * torch.sigmoid(self.bn(self.conv(descriptor)))


class NaiveBAM(nn.Module):
    """Hand-written BAM (the released code's structure, pooling globally): channel branch
    avgpool -> Linear -> BatchNorm1d -> ReLU -> Linear; spatial branch 1x1 conv, dilated 3x3 convs, 1x1
    conv; ``x * (1 + sigmoid(Mc (+|*) Ms))`` with both branches expanded to the input's shape."""

    def __init__(self, bam: BAM) -> None:
        super().__init__()
        self.channel_mlp = bam.channel_gate.mlp
        self.spatial = nn.Sequential(bam.spatial_gate.reduce, bam.spatial_gate.dilated, bam.spatial_gate.project)
        self.pool = ADAPTIVE_AVG_POOL[bam.dims](1)
        self.combine = bam.combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel_mlp(self.pool(x).flatten(1)).reshape(*x.shape[:2], *(1,) * (x.ndim - 2)).expand_as(x)
        spatial = self.spatial(x).expand_as(x)
        mixed = channel + spatial if self.combine == "sum" else channel * spatial
        return x * (1 + torch.sigmoid(mixed))


class NaiveECA(nn.Module):
    """Hand-written ECA: AdaptiveAvgPool -> view as (N, 1, C) -> Conv1d across channels -> sigmoid -> x * w."""

    def __init__(self, eca: ECA) -> None:
        super().__init__()
        self.pool = ADAPTIVE_AVG_POOL[eca.dims](1)
        self.conv = eca.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.conv(self.pool(x).view(x.shape[0], 1, x.shape[1])).view(*x.shape[:2], *(1,) * (x.ndim - 2))
        return x * torch.sigmoid(weights)


def has_reference(module: nn.Module) -> bool:
    """Whether :func:`naive_like` has a hand-written reference for ``module``."""
    is_se = isinstance(module, ChannelGate) and module.pool_types == ("avg",)
    return is_se or isinstance(module, (CBAM, BAM, ECA))


def naive_like(module: nn.Module) -> nn.Module:
    """The hand-written reference computing the same function as ``module`` (SE, CBAM, BAM or ECA), with
    a copy of its weights (NaiveBAM shares them)."""
    if not has_reference(module):
        raise TypeError(f"no hand-written reference for {type(module).__name__}")
    module = copy.deepcopy(module)
    if isinstance(module, CBAM):
        return NaiveCBAM(module)
    if isinstance(module, BAM):
        return NaiveBAM(module)
    if isinstance(module, ECA):
        return NaiveECA(module)
    return NaiveSE(module)


# --- measuring -----------------------------------------------------------------------------------
def saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the unique storages a forward pass of ``module`` on ``x`` saves for backward,
    not counting the module's parameters and buffers (the input counts when it is saved)."""
    excluded = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = module(x)
    del out
    return sum(storages.values())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], None], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    return (time.perf_counter() - start) * 1e3


@dataclass
class Variant:
    """One network measured in a case: ``make()`` builds it on the device in training mode."""

    name: str
    make: Callable[[], nn.Module]


@dataclass
class Result:
    """The figures of one variant of one case; ratios are filled in against the case's baselines."""

    case: str
    variant: str
    shape: tuple[int, ...]
    device: str
    dtype: str
    forward_ms: float | None = None
    train_ms: float | None = None
    saved_mb: float = 0.0
    saved_ratio: float | None = None
    peak_mb: float | None = None
    ratios: dict[str, float] = field(default_factory=dict)


def measure_case(
    case: str,
    variants: Sequence[Variant],
    shape: Sequence[int],
    device: torch.device,
    repeats: int,
    warmup: int,
    autocast_dtype: torch.dtype | None = None,
) -> list[Result]:
    """Measure every variant on one random input of ``shape``, interleaving the timed repeats."""
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device)
    modules = [variant.make().to(device).train() for variant in variants]
    grad_out = {}

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)

    def forward(module: nn.Module) -> torch.Tensor:
        with autocast():
            return module(x)

    def train_step(module: nn.Module) -> None:
        x.grad = None
        out = forward(module)
        out.backward(grad_out.setdefault(out.shape, torch.randn_like(out)))

    x.requires_grad_(True)
    results = []
    for variant, module in zip(variants, modules):
        with autocast():
            saved = saved_bytes(module, x)
        results.append(
            Result(
                case,
                variant.name,
                tuple(shape),
                str(device),
                str(autocast_dtype or x.dtype).replace("torch.", ""),
                saved_mb=saved / 2**20,
                saved_ratio=saved / (x.numel() * x.element_size()),
            )
        )
    for module in modules:
        for _ in range(warmup):
            train_step(module)
    forward_times: list[list[float]] = [[] for _ in modules]
    train_times: list[list[float]] = [[] for _ in modules]
    for _ in range(repeats):
        for index, module in enumerate(modules):
            forward_times[index].append(_timed(functools.partial(forward, module), device))
            train_times[index].append(_timed(functools.partial(train_step, module), device))
    for result, module, forward_ms, train_ms in zip(results, modules, forward_times, train_times):
        if repeats:
            result.forward_ms, result.train_ms = statistics.median(forward_ms), statistics.median(train_ms)
        if device.type == "cuda":
            x.grad = None
            torch.cuda.synchronize(device)
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            train_step(module)
            torch.cuda.synchronize(device)
            result.peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return results


def add_ratios(results: list[Result], baseline: str, label: str) -> None:
    """Set, for every variant of the case, ``ratios[label + ":train_speedup"]`` and
    ``ratios[label + ":forward_speedup"]`` (the baseline's time / the variant's, for the training step and
    the forward pass) and ``ratios[label + ":saved"]`` (the variant's saved memory / the baseline's), where
    both were measured."""
    reference = next((r for r in results if r.variant == baseline), None)
    if reference is None:
        return
    for result in results:
        if result.train_ms and reference.train_ms:
            result.ratios[f"{label}:train_speedup"] = reference.train_ms / result.train_ms
        if result.forward_ms and reference.forward_ms:
            result.ratios[f"{label}:forward_speedup"] = reference.forward_ms / result.forward_ms
        if reference.saved_mb:
            result.ratios[f"{label}:saved"] = result.saved_mb / reference.saved_mb


# --- the cases -----------------------------------------------------------------------------------
def block_shape(shape_3d: Sequence[int], dims: int) -> tuple[int, ...]:
    """The input of a ``dims``-d block with as many elements as the 3D ``(N, C, T, H, W)``:
    frames folded into the batch for 2D, positions flattened for 1D."""
    n, c, t, h, w = shape_3d
    return {3: (n, c, t, h, w), 2: (n * t, c, h, w), 1: (n, c, t * h * w)}[dims]


def block_results(
    name: str,
    dims: int,
    shape_3d: Sequence[int],
    device: torch.device,
    repeats: int,
    warmup: int,
    kernel_size: int,
    autocast_dtype: torch.dtype | None = None,
) -> list[Result]:
    """A registered attention (``name``) against its hand-written reference (``naive`` variant), where
    one exists."""
    shape = block_shape(shape_3d, dims)
    kwargs = {"kernel_size": kernel_size} if name == "cbam" else {}
    torch.manual_seed(0)
    ours = create_attention(name, shape[1], dims, **kwargs)
    variants = [Variant("naive", lambda: naive_like(ours))] if has_reference(ours) else []
    variants.append(Variant("cbam3d", lambda: ours))
    label = f"{name} {dims}d" + (f" k={kernel_size}" if name == "cbam" else "")
    results = measure_case(label, variants, shape, device, repeats, warmup, autocast_dtype)
    add_ratios(results, "naive", "vs_naive")
    return results


def _network(model_name: str, attention=None, attention_kwargs=None) -> Callable[[], nn.Module]:
    return lambda: create_model(model_name, attention=attention, attention_kwargs=attention_kwargs)


def _naive_factory(name: str, kernel_size: int) -> Callable[[int, int], nn.Module]:
    kwargs = {"kernel_size": kernel_size} if name == "cbam" else {}
    return lambda channels, dims: naive_like(create_attention(name, channels, dims, **kwargs))


def model_results(
    model_name: str,
    attention: Sequence[str],
    clip: Sequence[int],
    device: torch.device,
    repeats: int,
    warmup: int,
    kernel_size: int,
    autocast_dtype: torch.dtype | None = None,
) -> list[Result]:
    """A video network without attention, with cbam3d's attention and with the hand-written blocks
    (for the block attentions that have one; a custom module goes in every block, so not BAM)."""
    variants = [Variant("plain", _network(model_name))]
    for name in attention:
        kwargs = {"kernel_size": kernel_size} if name == "cbam" else None
        variants.append(Variant(name, _network(model_name, name, kwargs)))
        if get_attention(name).placement == "block" and has_reference(create_attention(name, 8, 3)):
            variants.append(Variant(f"naive-{name}", _network(model_name, _naive_factory(name, kernel_size))))
    results = measure_case(model_name, variants, clip, device, repeats, warmup, autocast_dtype)
    add_ratios(results, "plain", "vs_plain")
    return results


def _compiled(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: torch.compile(make())


def peer_variants(case: PeerCase, compile_blocks: bool, note: Callable[[str], None]) -> list[Variant]:
    """The variants of a :class:`~cbam3d.benchmark.peers.PeerCase`: the hand-written block (eager, and
    compiled with ``compile_blocks``) where the case has one, each installed peer, then cbam3d's block;
    ``note`` hears of each peer left out."""
    variants = []
    if case.hand_written:
        variants.append(Variant("naive", lambda: naive_like(case.ours)))
        if compile_blocks:
            variants.append(Variant("naive compiled", _compiled(lambda: naive_like(case.ours))))
    for peer in case.peers:
        if is_installed(peer.package):
            variants.append(Variant(peer.name, lambda peer=peer: peer.make(case.shape[1])))
        else:
            note(f"{case.label}: {peer.name} skipped ({peer.package} is not installed)")
    variants.append(Variant("cbam3d", lambda: case.ours))
    return variants


def peer_results(settings: Settings, device: torch.device, note: Callable[[str], None]) -> list[Result]:
    """Every :func:`~cbam3d.benchmark.peers.peer_cases` case, ratios against its baseline."""
    results = []
    for case in peer_cases(settings.peer_shape_3d, settings.peer_shape_2d, settings.kernel_size):
        variants = peer_variants(case, settings.compile_blocks, note)
        measured = measure_case(case.label, variants, case.shape, device, settings.repeats, settings.warmup)
        add_ratios(measured, case.baseline, f"vs {case.baseline}")
        results += measured
        note(peer_table(measured).split("\n", 2)[2])
    return results


def training_step_results(settings: Settings, device: torch.device) -> list[Result]:
    """Whole forward + backward passes of ``settings.step_model`` on ``settings.step_clip``: plain and with
    each of ``settings.step_attention``, eager (ratios against ``plain``) and, with ``compile_networks``,
    compiled (against ``plain compiled``)."""
    names = [None, *settings.step_attention]
    results = []
    for compiled in (False, True) if settings.compile_networks else (False,):
        suffix = " compiled" if compiled else ""
        variants = []
        for name in names:
            kwargs = {"kernel_size": settings.kernel_size} if name == "cbam" else None
            make = _network(settings.step_model, name, kwargs)
            variants.append(Variant(f"{name or 'plain'}{suffix}", _compiled(make) if compiled else make))
        case = f"{settings.step_model} step"
        measured = measure_case(case, variants, settings.step_clip, device, settings.step_repeats, settings.warmup)
        add_ratios(measured, f"plain{suffix}", f"vs plain{suffix}")
        results += measured
    return results


# --- output --------------------------------------------------------------------------------------
def _format(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def markdown_table(results: Sequence[Result]) -> str:
    """One row per variant: times, saved memory and the ratios against the case's baseline."""
    header = (
        "| case | variant | input | fwd ms | fwd+bwd ms | speed-up (fwd+bwd) | saved for bwd "
        "| vs baseline memory | peak MB |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = [header]
    for r in results:
        label = "vs_naive" if "vs_naive:saved" in r.ratios else "vs_plain"
        speedup = r.ratios.get(f"{label}:train_speedup")
        saved = f"{r.saved_ratio:.2f}x input" if label == "vs_naive" else f"{r.saved_mb:.0f} MB"
        memory = r.ratios.get(f"{label}:saved")
        if memory is None:
            memory_text = "-"
        else:
            memory_text = f"{memory:.2f}x naive" if label == "vs_naive" else f"{(memory - 1) * 100:+.1f}% vs plain"
        rows.append(
            f"| {r.case} | {r.variant} | {'x'.join(map(str, r.shape))} | {_format(r.forward_ms, '{:.1f}')} | "
            f"{_format(r.train_ms, '{:.1f}')} | {_format(speedup, '{:.2f}x')} | {saved} | {memory_text} | "
            f"{_format(r.peak_mb, '{:.0f}')} |"
        )
    return "\n".join(rows)


def peer_table(results: Sequence[Result]) -> str:
    """The peers' and training steps' rows: times, the fwd+bwd speed-up over the case's baseline and its
    inverse (the time relative to the baseline), and the memory kept for backward as a multiple of the input."""
    rows = [
        "| case | variant | input | fwd ms | fwd+bwd ms | speed-up (fwd+bwd) | time vs baseline | saved for bwd |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        label, speedup = next(
            ((key.split(":")[0], value) for key, value in r.ratios.items() if key.endswith(":train_speedup")),
            ("", None),
        )
        rows.append(
            f"| {r.case} | {r.variant} | {'x'.join(map(str, r.shape))} | {_format(r.forward_ms, '{:.1f}')} | "
            f"{_format(r.train_ms, '{:.1f}')} | {_format(speedup, '{:.2f}x ' + label)} | "
            f"{_format(speedup and 1 / speedup, '{:.2f}x')} | {r.saved_ratio:.2f}x input |"
        )
    return "\n".join(rows)


def to_json(results: Sequence[Result], settings: dict) -> str:
    return json.dumps({"settings": settings, "results": [asdict(r) for r in results]}, indent=2)


# --- the runs --------------------------------------------------------------------------------------
@dataclass
class Settings:
    """What one benchmark run measures. :data:`PRESETS` holds the full and the quick (2-core CPU) runs."""

    block_shapes: list[tuple[int, int, int, int, int]]
    dims: list[int] = field(default_factory=lambda: [1, 2, 3])
    blocks: list[str] = field(default_factory=lambda: list(attention_names()))
    models: list[str] = field(default_factory=lambda: ["r3d_18", "resnet3d-18", "resnet3d-50"])
    model_attention: list[str] = field(default_factory=lambda: list(attention_names()))
    clip: tuple[int, int, int, int, int] = (2, 3, 8, 112, 112)
    repeats: int = 10
    model_repeats: int = 5
    warmup: int = 2
    kernel_size: int = 7
    device: str = "cpu"
    amp: str | None = None
    # the comparison with other packages' blocks and the whole training steps (benchmark_peers)
    peers: bool = False
    peer_shape_3d: tuple[int, int, int, int, int] = (8, 64, 8, 28, 28)
    peer_shape_2d: tuple[int, int, int, int] = (16, 256, 28, 28)
    compile_blocks: bool = True
    step_model: str = "r3d_18"
    step_clip: tuple[int, int, int, int, int] = (2, 3, 8, 56, 56)
    step_repeats: int = 5
    step_attention: list[str] = field(default_factory=lambda: list(attention_names()))
    compile_networks: bool = False


PRESETS: dict[str, Settings] = {
    "full": Settings(block_shapes=[(8, 64, 8, 56, 56), (8, 256, 4, 14, 14)]),
    # For a small CPU: the target shape, fewer repeats, and the networks' memory without timing them.
    "quick": Settings(block_shapes=[(8, 64, 8, 28, 28), (8, 256, 4, 14, 14)], repeats=5, model_repeats=0, warmup=1),
}

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def run(settings: Settings, log: Callable[[str], None] = print) -> list[Result]:
    """Every block case, then every network case, of ``settings``; ``log`` gets a line per case."""
    device = torch.device(settings.device)
    amp = AMP_DTYPES[settings.amp] if settings.amp else None
    results: list[Result] = []
    for shape in settings.block_shapes:
        for dims in settings.dims:
            for name in settings.blocks:
                case = block_results(
                    name, dims, shape, device, settings.repeats, settings.warmup, settings.kernel_size, amp
                )
                results += case
                log(markdown_table(case).split("\n", 2)[2])
    for model_name in settings.models:
        case = model_results(
            model_name,
            settings.model_attention,
            settings.clip,
            device,
            settings.model_repeats,
            settings.warmup,
            settings.kernel_size,
            amp,
        )
        results += case
        log(markdown_table(case).split("\n", 2)[2])
    return results


def run_peers(settings: Settings, log: Callable[[str], None] = print) -> list[Result]:
    """The peers' block cases, then the whole training steps, of ``settings``."""
    device = torch.device(settings.device)
    results = peer_results(settings, device, log)
    steps = training_step_results(settings, device)
    log(peer_table(steps).split("\n", 2)[2])
    return results + steps


_USAGE = """examples:
  cbam3d benchmark --quick                        # 2-core CPU: (8, 64, 8, 28, 28) blocks, model memory
  cbam3d benchmark --device cuda --amp bf16       # the full run on a GPU
  cbam3d benchmark --quick --markdown bench.md --json bench.json
  cbam3d benchmark --quick --threads 1 --peers    # also MONAI, fvcore, timm, torch.compile and training steps"""


def benchmark_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cbam3d benchmark",
        description="Benchmark cbam3d's attention modules against hand-written blocks and the network without "
        "attention: forward and forward+backward time, memory kept for backward.",
        epilog=_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="the small preset for a few CPU cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="run under autocast in this dtype")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for CPU runs")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=5,
        action="append",
        metavar=("N", "C", "T", "H", "W"),
        help="a block input shape (repeat for several); replaces the preset's",
    )
    parser.add_argument("--dims", type=int, nargs="+", choices=[1, 2, 3], help="block dimensions to time")
    parser.add_argument("--blocks", nargs="+", choices=attention_names(), help="attention blocks to time")
    parser.add_argument("--models", nargs="*", help="networks for models.create_model; none to skip them")
    parser.add_argument(
        "--model-attention", nargs="+", choices=attention_names(), help="attention put into the networks"
    )
    parser.add_argument("--clip", type=int, nargs=5, metavar=("N", "C", "T", "H", "W"), help="the networks' input")
    parser.add_argument("--repeats", type=int, help="timed repeats per block variant (median reported)")
    parser.add_argument("--model-repeats", type=int, help="timed repeats per network variant; 0 measures memory only")
    parser.add_argument("--warmup", type=int, help="untimed runs before timing")
    parser.add_argument(
        "--kernel-size", type=int, help="CBAM's spatial kernel, the same for the naive block (default 7)"
    )
    peers = parser.add_argument_group("peers and training steps")
    peers.add_argument(
        "--peers",
        action="store_true",
        help="also measure the hand-written blocks under torch.compile, MONAI's ChannelSELayer, fvcore's "
        "SqueezeExcitation, timm's CbamModule and EcaModule (those installed) and whole training steps",
    )
    peers.add_argument("--no-compile-blocks", action="store_true", help="leave out the compiled hand-written blocks")
    peers.add_argument(
        "--compile-networks", action="store_true", help="also time the training steps under torch.compile (slow)"
    )
    peers.add_argument("--step-model", help="the network of the training steps (default r3d_18)")
    peers.add_argument(
        "--step-clip", type=int, nargs=5, metavar=("N", "C", "T", "H", "W"), help="its input (default 2 3 8 56 56)"
    )
    peers.add_argument("--step-repeats", type=int, help="timed training steps per variant (default 5)")
    peers.add_argument("--step-attention", nargs="+", choices=attention_names(), help="default: every attention")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    return parser


def _argument_problem(args: argparse.Namespace) -> str | None:
    """The first option out of range, as a one-line message, or None."""
    counts = {"--repeats": (args.repeats, 0), "--model-repeats": (args.model_repeats, 0), "--warmup": (args.warmup, 0)}
    counts["--threads"] = (args.threads, 1)
    for flag, (value, low) in counts.items():
        if value is not None and value < low:
            return f"{flag} must be at least {low}, got {value}"
    for flag, shapes in (("--shape", args.shape or []), ("--clip", [args.clip] if args.clip else [])):
        for shape in shapes:
            if min(shape) < 1:
                return f"{flag} sizes must be positive, got {' '.join(map(str, shape))}"
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        return f"--device {args.device!r}: {str(error).splitlines()[0]}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"--device {args.device}: no CUDA device is available"
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            return f"{flag} {path}: expected a file in an existing folder"
    return None


def benchmark_main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark command line and return the markdown table it printed."""
    parser = benchmark_parser()
    args = parser.parse_args(argv)
    problem = _argument_problem(args)
    if problem:
        parser.error(problem)
    overrides = {
        "block_shapes": [tuple(s) for s in args.shape] if args.shape else None,
        "dims": args.dims,
        "blocks": args.blocks,
        "models": args.models,
        "model_attention": args.model_attention,
        "clip": tuple(args.clip) if args.clip else None,
        "repeats": args.repeats,
        "model_repeats": args.model_repeats,
        "warmup": args.warmup,
        "kernel_size": args.kernel_size,
        "device": args.device,
        "amp": args.amp,
        "peers": args.peers or None,
        "compile_blocks": False if args.no_compile_blocks else None,
        "compile_networks": args.compile_networks or None,
        "step_model": args.step_model,
        "step_clip": tuple(args.step_clip) if args.step_clip else None,
        "step_repeats": args.step_repeats,
        "step_attention": args.step_attention,
    }
    settings = replace(
        PRESETS["quick" if args.quick else "full"], **{k: v for k, v in overrides.items() if v is not None}
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results = run(settings)
    except ValueError as error:  # an option the modules or networks refuse (kernel size, model name ...)
        parser.error(str(error).splitlines()[0])
    table = markdown_table(results)
    if settings.peers:
        peers = run_peers(settings)
        table += "\n\n" + peer_table(peers)
        results += peers
    print(f"\n{table}")
    described = {**asdict(settings), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.markdown:
        args.markdown.write_text(f"Settings: `{json.dumps(described)}`\n\n{table}\n")
    if args.json:
        args.json.write_text(to_json(results, described))
    return table
