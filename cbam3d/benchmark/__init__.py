"""``cbam3d benchmark``: time and memory of the attention modules against hand-written blocks, other packages'
blocks and the network without attention, whole training steps, and the data loader's throughput.

Modules: :mod:`~cbam3d.benchmark.reference` (the hand-written blocks), :mod:`~cbam3d.benchmark.measure` (timing
medians, memory kept for backward), :mod:`~cbam3d.benchmark.blocks` and :mod:`~cbam3d.benchmark.networks` (the
block and whole-network cases), :mod:`~cbam3d.benchmark.peers` (other packages' blocks),
:mod:`~cbam3d.benchmark.runs` (settings, presets, the runs), :mod:`~cbam3d.benchmark.loading` (data-loader
clips per second, ``--data``), :mod:`~cbam3d.benchmark.reports` (markdown tables, JSON) and
:mod:`~cbam3d.benchmark.cli` (the command line).
"""
