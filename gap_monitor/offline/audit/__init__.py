"""`gap-monitor audit`: synchronization QA of recordings. `model` holds the results and their JSON,
`analysis` reads the recordings and judges them; the text report is `gap_monitor.render.audit_text`
and the command line `gap_monitor.commands.audit`."""

from gap_monitor.offline.audit.analysis import RecordingAuditor, has_header, open_recordings, run_audit
from gap_monitor.offline.audit.model import (
    AUDIT_SCHEMA,
    AuditFinding,
    AuditInputError,
    AuditResult,
    AuditSettings,
    MotionAudit,
    PairAudit,
    RecordingAudit,
    SkippedTopic,
    TopicAudit,
)

__all__ = [
    "AUDIT_SCHEMA",
    "AuditFinding",
    "AuditInputError",
    "AuditResult",
    "AuditSettings",
    "MotionAudit",
    "PairAudit",
    "RecordingAudit",
    "RecordingAuditor",
    "SkippedTopic",
    "TopicAudit",
    "has_header",
    "open_recordings",
    "run_audit",
]
