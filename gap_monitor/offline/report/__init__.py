"""`gap-monitor report`: deployment recordings against a training profile (being split into modules)."""

from gap_monitor.offline.report.analysis import *  # noqa: F403
from gap_monitor.offline.report.analysis import __all__ as __all__
