"""The `gap-monitor` command line: one module per verb."""
