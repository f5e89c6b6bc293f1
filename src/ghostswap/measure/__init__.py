"""Measurement: kernel-named counters, kernel-equivalent accounting, reports."""
