"""Durability: segmented logs with checksummed records, ack files, group commit, definitions.

Plain synchronous file IO; no asyncio and no threads (the server runs CommitTicket.run on its one
fsync thread). The broker sees only api.py. Formats are specified in format.py's docstring.
"""
