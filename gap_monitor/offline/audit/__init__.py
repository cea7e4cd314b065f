"""`gap-monitor audit`: synchronization QA of recordings (being split into modules)."""

from gap_monitor.offline.audit.analysis import *  # noqa: F403
from gap_monitor.offline.audit.analysis import __all__ as __all__
