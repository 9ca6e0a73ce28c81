"""Benchmarks that print numbers next to their targets: `python -m bench`.

Everything runs on loopback against the fakes of Discord and the relay (`bot.fakes`), with
the real bot, engine and store. Each benchmark is bounded in time and requests and stops
by itself; see `bench.__main__` for the options.
"""
