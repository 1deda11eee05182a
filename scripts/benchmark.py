#!/usr/bin/env python
"""Benchmark cbam3d's attention against hand-written blocks and the plain network (see --help)."""

from cbam3d.benchmark.cli import benchmark_main

if __name__ == "__main__":
    benchmark_main()
