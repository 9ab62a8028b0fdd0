"""One file per document: the checksummed v3 log, and ypy-websocket's older layouts."""
