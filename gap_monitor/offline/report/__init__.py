"""`gap-monitor report`: deployment recordings against a training profile (being split into modules)."""

from gap_monitor.offline.report import analysis, catalogue, compare, targets, to_json
from gap_monitor.offline.report.analysis import *  # noqa: F403
from gap_monitor.offline.report.catalogue import *  # noqa: F403
from gap_monitor.offline.report.compare import *  # noqa: F403
from gap_monitor.offline.report.targets import *  # noqa: F403
from gap_monitor.offline.report.to_json import *  # noqa: F403

__all__ = [*analysis.__all__, *catalogue.__all__, *compare.__all__, *targets.__all__, *to_json.__all__]
