"""Training: optimizer, train state and step, checkpoints, metrics, the loop."""
