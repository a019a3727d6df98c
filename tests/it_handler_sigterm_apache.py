#!/usr/bin/python3
"""
it_handler_sigterm_apache.py: it_handler_sigterm.py behind Apache, with
mod_fcgid (conf/apache/talkproxy-fcgid.conf; also a graceful restart of
Apache while a request waits) and with mod_proxy_fcgi
(conf/apache/talkproxy-proxy-fcgi.conf, the handler started by
spawn-fcgi). Prints TAP.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import it_handler_sigterm  # noqa: E402

if __name__ == "__main__":
    it_handler_sigterm.main(["apache-fcgid", "apache-proxy"])
