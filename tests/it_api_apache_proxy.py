#!/usr/bin/python3
"""
it_api_apache_proxy.py: the whole of it_api.py (the JSON API end to end),
behind Apache with mod_proxy_fcgi running the shipped
conf/apache/talkproxy-proxy-fcgi.conf, to a talkproxy-fcgi that spawn-fcgi
started on a Unix socket. Prints TAP.
"""

import os
import runpy

os.environ["TP_WEB"] = "apache-proxy"
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "it_api.py"),
               run_name="__main__")
