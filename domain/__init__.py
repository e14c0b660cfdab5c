"""The functional core: lifecycle and credit rules as pure, I/O-free Python.

Nothing in this package reads the clock, the network or a database: every function takes the
current time as an argument, so the Temporal workflow can drive it deterministically and the tests
can cover it exhaustively.
"""
