#!/usr/bin/env python
"""``cbam3d benchmark``: cbam3d's attention against hand-written blocks and the plain network, or with --data the
data loader's clips per second per worker (see --help)."""

from cbam3d.benchmark.cli import benchmark_main

if __name__ == "__main__":
    benchmark_main()
