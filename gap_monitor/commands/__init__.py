"""The `gap-monitor` verbs as plugins: one module per verb, each holding `COMMAND`.

`gap_monitor.cli` builds its parser from `commands()`: the verbs below, then any a package adds
through the `gap_monitor.commands` entry-point group (as ros2cli finds its verbs). Every verb also
runs alone: `python -m gap_monitor.commands.<verb>`. Bad input (`InputError`, or a path that
cannot be read or written) is one line on stderr and exit 2, in one place: `run_command`.
"""

from gap_monitor.commands.base import BUILTIN_VERBS, Command, commands, run_command

__all__ = ["BUILTIN_VERBS", "Command", "commands", "run_command"]
