"""The `tre` command line: a thin layer over `tre.service`."""
