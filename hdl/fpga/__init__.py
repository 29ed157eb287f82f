"""The FPGA flow: export every registered top to Verilog, lint it with Verilator, and
synthesise, place and route it on ECP5 with the open toolchain from PyPI.

``python -m hdl.fpga verilog|lint|synth [TOP...]`` (``make verilog``, ``make lint``,
``make synth TOP=<top>``); :mod:`hdl.fpga.tops` lists the tops. See ``docs/fpga.md``.
"""
