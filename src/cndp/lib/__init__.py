"""Application libraries over packet vectors: FIB/RIB, ACL, flow hash, meters, timers, msgchan.

Each module works on whole numpy vectors of keys so a graph node pays a fixed number of numpy
calls per burst. Import the submodules directly (``from cndp.lib import fib``).
"""
