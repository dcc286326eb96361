"""Tests of dlab.analysis (a package, so test module names cannot clash with other areas)."""
