# Two commands do all the set-up: `make sim` and `make test`.
# Both create .venv when it is missing and install the pinned packages into it.

PYTHON_SYS ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
FPGA_STAMP := $(VENV)/.installed-fpga
BUILD      := build
JOBS       ?= 2

# Simulation knobs (see README): PCAP=<file> INGRESS=mac|rr SLOTS= PPS= MODEL=1 SEED=
PCAP    ?=
INGRESS ?= mac
SLOTS   ?= 4
PPS     ?= 4
SEED    ?= 1
MODEL   ?= 1

# FPGA flow knobs (see docs/fpga.md): TOP=<top> [TOP="a b"]; empty means every registered top.
# DEVICE= PACKAGE= SPEED= FREQ= override python -m hdl.fpga synth's defaults
# (LFE5U-85F, CABGA381, 6, 125 MHz).
TOP     ?=
DEVICE  ?=
PACKAGE ?=
SPEED   ?=
FREQ    ?=

.PHONY: all sim test regress bench docs clean distclean check-iverilog check-verilator venv \
	verilog lint synth

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

venv: $(STAMP)

# The FPGA tools (~250 MB of WebAssembly) come with the 'fpga' extra, installed only for synth.
$(FPGA_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[fpga]"
	@touch $@

# Icarus Verilog runs the cocotb benches. Install it where we can (Debian, as root);
# otherwise say exactly what to do.
check-iverilog:
	@if ! command -v iverilog >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "iverilog missing: installing Debian package iverilog"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog; \
	  else \
	    echo "error: Icarus Verilog is required. Install it with: sudo apt-get install iverilog"; exit 1; \
	  fi; \
	fi

# MODEL=1 selects the golden model; it is the only engine until the device co-simulation lands.
sim: $(STAMP)
	$(PY) -m sim $(if $(PCAP),--pcap $(PCAP)) --ingress $(INGRESS) --slots $(SLOTS) --pps $(PPS) \
	  --seed $(SEED) $(if $(filter 1,$(MODEL)),--model) --out $(BUILD)/sim

test: $(STAMP) check-iverilog check-verilator
	$(PY) -m pytest -n $(JOBS) -m "not slow" tests

regress: $(STAMP) check-iverilog
	$(PY) -m pytest -n $(JOBS) -m slow tests

bench: $(FPGA_STAMP)
	$(PY) -m sim.bench

verilog: $(STAMP)
	$(PY) -m hdl.fpga verilog $(TOP)

# Debian's Verilator (5.006) lints; like Icarus, installed where we can (Debian, as root).
check-verilator:
	@if ! command -v verilator >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "verilator missing: installing Debian package verilator"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq verilator; \
	  else \
	    echo "error: Verilator is required. Install it with: sudo apt-get install verilator"; exit 1; \
	  fi; \
	fi

lint: $(STAMP) check-verilator
	$(PY) -m hdl.fpga lint $(TOP)

SYNTH_ARGS = $(if $(DEVICE),--device $(DEVICE)) $(if $(PACKAGE),--package $(PACKAGE)) \
             $(if $(SPEED),--speed $(SPEED)) $(if $(FREQ),--freq $(FREQ))

synth: $(FPGA_STAMP)
	$(PY) -m hdl.fpga synth $(TOP) $(strip $(SYNTH_ARGS))

docs: $(STAMP)
	$(PY) -m hdl.wire.doc > docs/protocol.md

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV)
