"""cocotb test modules, one per block; each is run by a pytest wrapper in ``tests/``."""
