"""The integration test harness: stack.py starts the real servers (Redis,
Prosody, talkproxyd, lighttpd with the shipped snippet) and an XMPP peer;
tap.py prints the TAP that automake's tap-driver reads."""
