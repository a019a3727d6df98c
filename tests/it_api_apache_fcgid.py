#!/usr/bin/python3
"""
it_api_apache_fcgid.py: the whole of it_api.py (the JSON API end to end),
behind Apache with mod_fcgid running the shipped
conf/apache/talkproxy-fcgid.conf instead of lighttpd. Prints TAP.
"""

import os
import runpy

os.environ["TP_WEB"] = "apache-fcgid"
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "it_api.py"),
               run_name="__main__")
