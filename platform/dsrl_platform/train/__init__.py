"""Training one run: the runner (protocol, evaluation), accounting, checkpoints, metric sinks."""
