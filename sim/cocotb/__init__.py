"""cocotb infrastructure shared by the benches: Verilog export and the Icarus runner
(:mod:`.build`), stream drivers and the bench base class (:mod:`.stream`). The benches
themselves are in :mod:`.benches`; the pytest wrappers that run them are in ``tests/``."""
