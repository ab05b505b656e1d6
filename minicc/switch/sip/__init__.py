"""Sans-IO SIP (RFC 3261): messages, transactions, dialogs, digest auth.

Nothing in this package imports asyncio, socket, sqlite3, threading or time; the
current time is always passed in as ``now`` (seconds, monotonic).
"""
