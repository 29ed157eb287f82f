"""The card flow engine: frame parsing (and, in later steps, the fragment table and the LFT)."""
