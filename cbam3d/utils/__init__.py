"""Helpers of every command (torch only): atomic file writes, the one error type of bad input, and what the
command lines print around the work."""
