"""Offline work over recordings: profile extraction, audit, report analysis, replay."""
