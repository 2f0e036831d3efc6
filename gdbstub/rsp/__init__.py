"""Sans-IO GDB Remote Serial Protocol core (standard library only).

:mod:`.codec` turns bytes into events and payloads into framed bytes,
:mod:`.parse` turns a payload into a typed command from :mod:`.commands`,
:mod:`.stops` turns a stop reason into its reply payload. Nothing here
touches a socket.
"""
