#!/bin/sh
# Runs a widget test on its own Xvfb server (xvfb-run picks a free display),
# 24-bit, large enough for every window; GDK_SCALE passes through, so the
# same tests run at scale 2.
exec xvfb-run -a -s "-screen 0 1600x1200x24 -nolisten tcp" "$@"
