#!/bin/sh
# Runs a widget test on its own Xvfb server (xvfb-run picks a free display),
# 24-bit, a 4K screen (where scale 2 is used), large enough for every window
# at both scales; GDK_SCALE passes through, so the
# same tests run at scale 2.
exec xvfb-run -a -s "-screen 0 3840x2160x24 -nolisten tcp" "$@"
