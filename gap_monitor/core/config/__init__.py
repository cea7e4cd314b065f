"""The monitor configuration: model (one dataclass per section), parsing and validation.

Import from here: `from gap_monitor.core.config import MonitorConfig, load_config`.
"""

from gap_monitor.core.config.changes import change_refusal, is_ros_own
from gap_monitor.core.config.model import (
    NODE_NAME,
    CaptureConfig,
    ConditionsConfig,
    HealthConfig,
    MonitorConfig,
    MotionOffsetConfig,
    SkewPairConfig,
    StreamConfig,
    TimingConfig,
)
from gap_monitor.core.config.parsing import (
    config_from_parameters,
    flatten,
    load_config,
    parameters_from_file,
    params_document,
    unflatten,
)
from gap_monitor.core.config.startup import (
    check_params_file,
    check_params_files,
    check_startup,
    node_key_matches,
    node_name_from_ros_args,
    output_dir_problem,
    params_files_in_ros_args,
)
from gap_monitor.core.config.triggers import TRIGGER_KEYS, parse_triggers, triggers_from_parameters
from gap_monitor.core.config.validation import Checker, is_topic_name
from gap_monitor.errors import ConfigError

__all__ = [
    "NODE_NAME",
    "TRIGGER_KEYS",
    "CaptureConfig",
    "Checker",
    "ConditionsConfig",
    "ConfigError",
    "HealthConfig",
    "MonitorConfig",
    "MotionOffsetConfig",
    "SkewPairConfig",
    "StreamConfig",
    "TimingConfig",
    "change_refusal",
    "check_params_file",
    "check_params_files",
    "check_startup",
    "config_from_parameters",
    "flatten",
    "is_ros_own",
    "is_topic_name",
    "load_config",
    "node_key_matches",
    "node_name_from_ros_args",
    "output_dir_problem",
    "parameters_from_file",
    "params_document",
    "params_files_in_ros_args",
    "parse_triggers",
    "triggers_from_parameters",
    "unflatten",
]
