"""Shared test settings."""

import torch

# The suite's tensors are tiny: one thread avoids the cost of spreading each small op over cores that
# other processes (CI runners, DataLoader workers) are using.
torch.set_num_threads(1)
