"""`gap-monitor report`: how a deployment's conditions compare with the training profile, and
`gap-monitor profile compare`: how much of one profile another covers.

`analysis` reads the recordings into the `model`; `targets` finds the collection targets,
`catalogue` reads the snapshot folders, `compare` compares two profiles, `histograms` reads shares
from profile histograms, `words` puts numbers into the report's sentences and `to_json` writes
report.json (schema: report_schema.json beside it). The pages are `gap_monitor.render.report_html`,
the command lines `gap_monitor.commands.report`."""

from gap_monitor.offline.report.analysis import build_report
from gap_monitor.offline.report.catalogue import load_snapshots
from gap_monitor.offline.report.compare import FeatureComparison, ProfileComparison, compare_profiles
from gap_monitor.offline.report.histograms import share_below
from gap_monitor.offline.report.model import (
    AlarmEpisode,
    CollectionTarget,
    FeatureReport,
    RecordingInfo,
    Report,
    ReportInputError,
    ReportSettings,
    SnapshotEntry,
    SnapshotTrigger,
    StreamReport,
    TargetFeature,
    TopicTrace,
)
from gap_monitor.offline.report.targets import round_cut
from gap_monitor.offline.report.to_json import (
    COMPARE_SCHEMA,
    REPORT_SCHEMA,
    SCHEMA_PATH,
    comparison_json,
    report_json,
)

__all__ = [
    "COMPARE_SCHEMA",
    "REPORT_SCHEMA",
    "SCHEMA_PATH",
    "AlarmEpisode",
    "CollectionTarget",
    "FeatureComparison",
    "FeatureReport",
    "ProfileComparison",
    "RecordingInfo",
    "Report",
    "ReportInputError",
    "ReportSettings",
    "SnapshotEntry",
    "SnapshotTrigger",
    "StreamReport",
    "TargetFeature",
    "TopicTrace",
    "build_report",
    "compare_profiles",
    "comparison_json",
    "load_snapshots",
    "report_json",
    "round_cut",
    "share_below",
]
