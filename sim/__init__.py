"""The Python side: golden model, PPM-SW, packet processors, traffic, and the cocotb benches."""
