"""Loopback fakes of the relay and of Discord: real servers for tests and the offline sandbox."""
