"""Verilator lint of exported Verilog: ``verilator --lint-only -Wall`` minus the warnings that
Amaranth's Verilog backend produces for every design.

Each suppressed warning is listed in :data:`SUPPRESSED` with the reason it is always present
in Amaranth's output and carries no information about the design; every other warning, and
every error, fails the lint.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass


__all__ = ["SUPPRESSED", "LintResult", "ToolMissing", "lint_command", "lint"]


SUPPRESSED = {
    "UNUSEDSIGNAL":
        "Amaranth keeps every named signal (struct field views such as "
        "'i_stream__payload.key.zone', 'enable', named intermediate values) as a write-only "
        "alias while the logic reads Yosys's '$N' temporaries, and its arithmetic produces "
        "a carry bit ('$N'[64]) that a truncating slice drops: hundreds of these per design.",
    "DECLFILENAME":
        "Amaranth writes a whole hierarchy into one file, with submodules named "
        "'<top>.<sub>', so only the top module can match the file name.",
    "CASEINCOMPLETE":
        "Amaranth lowers m.Switch/m.FSM to a casez without a default arm after assigning "
        "every target its default value, so the incomplete case is intended and latch-free.",
    "WIDTH":
        "Yosys's Verilog writer leaves operands at their own widths and relies on Verilog's "
        "context-width extension (e.g. in SyncFIFO's level); widths were already fixed by "
        "Amaranth's own rules, so a width mismatch here never changes behaviour.",
}

_MESSAGE = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (.*)$")


class ToolMissing(RuntimeError):
    """An external tool of the FPGA flow is not installed."""


@dataclass(frozen=True)
class LintResult:
    """The outcome of linting one file.

    Attributes
    ----------
    ok : bool
        True when Verilator reported nothing and exited 0.
    messages : list of (str, str or None, str)
        ``(severity, rule, text)`` for each ``%Warning``/``%Error`` line, excluding
        Verilator's closing "Exiting due to ..." line.
    output : str
        Verilator's complete output.
    """
    ok: bool
    messages: list
    output: str


def lint_command(path, top, *, verilator="verilator"):
    """The Verilator command line that lints module ``top`` of file ``path``."""
    return [verilator, "--lint-only", "-Wall", *(f"-Wno-{rule}" for rule in SUPPRESSED),
            "--top-module", top, str(path)]


def lint(path, top, *, verilator="verilator"):
    """Lint module ``top`` of Verilog file ``path``; returns a :class:`LintResult`.

    Raises
    ------
    ToolMissing
        If ``verilator`` is not on ``PATH``.
    """
    if shutil.which(verilator) is None:
        raise ToolMissing(f"{verilator!r} is not on PATH: install Debian's Verilator "
                          f"(apt-get install verilator; 5.006 or later)")
    run = subprocess.run(lint_command(path, top, verilator=verilator), capture_output=True,
                         text=True)
    output = run.stdout + run.stderr
    messages = []
    for line in output.splitlines():
        match = _MESSAGE.match(line)
        if match and not match[3].startswith("Exiting due to"):
            messages.append((match[1], match[2], match[3]))
    return LintResult(ok=run.returncode == 0 and not messages, messages=messages, output=output)
