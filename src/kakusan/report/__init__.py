"""Run directories, checkpoints, figures and HTML reports."""
