"""The rate-limiting algorithms, sans-I/O: plain numbers in, an `Outcome` out.

One module per algorithm. Time is an integer count of microseconds supplied by the caller (an
injected clock), so window edges are exact in tests and identical between the memory store and
the Redis Lua scripts, which run the same arithmetic (Lua numbers are IEEE doubles, exact for
integers below 2**53, i.e. for microsecond timestamps until the year 2255).

Each module has a pure `step` used by the memory store, and an `outcome` that turns the values
a Redis script returns into the same `Outcome`, so both stores report identically.
"""

from bastion.ratelimit.algorithms._outcome import Outcome

__all__ = ["Outcome"]
