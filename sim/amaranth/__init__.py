"""Benches that drive hardware blocks in Amaranth's own simulator (no Verilog export), used by
the unit tests and by the benchmarks that need cycle counts over long runs."""
