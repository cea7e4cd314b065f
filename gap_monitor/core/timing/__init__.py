"""Time on the wire: receive health, header-stamp timing, pairwise skew, motion offset."""
