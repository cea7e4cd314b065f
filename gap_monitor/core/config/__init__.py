"""The monitor configuration: model, parsing and validation."""
