"""``cbam3d benchmark``: time and memory of the attention modules against hand-written blocks and other
packages' blocks, whole training steps, and the data loader's throughput."""
