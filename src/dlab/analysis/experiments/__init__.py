"""One module per analysis experiment, each defining `SPEC` (see `dlab.analysis.registry`)."""
