"""The simulated sensor rig, its fault scenarios and its recorder."""
