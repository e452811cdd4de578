"""Evaluation: metrics and benchmark formats."""
