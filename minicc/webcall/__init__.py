"""Click-to-call: a web widget, signaling routes and aiortc gateway workers that bridge each
browser call to the switch as an ordinary SIP call on loopback (docs/webcall.md)."""
