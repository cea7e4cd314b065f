"""Reading and writing robot data: CDR decoding, message definitions, recordings, MCAP."""
