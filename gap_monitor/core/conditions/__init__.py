"""Training conditions: features, the feed loop, the profile, scoring and the alarm."""
