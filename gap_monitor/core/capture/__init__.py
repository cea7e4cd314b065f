"""Hard-case capture: the ring buffer, snapshots and their triggers."""
