"""Gateware: the PPM hardware, the card flow engine and the fabric, in Amaranth 0.5."""
