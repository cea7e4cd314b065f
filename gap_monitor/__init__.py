"""gap_monitor: see when deployment conditions leave what the training data covered."""

__version__ = "0.1.0"
