"""The global flow table (GFT) in hardware: a two-sub-table cuckoo hash in block RAM with a
stash, relocation, background aging and statistics, scoreboarded against
:mod:`sim.model.gft`. The top is :class:`hdl.gft.table.GlobalFlowTable`."""
