"""Referring-segmentation evaluation: metrics, data specs and the evaluator."""
