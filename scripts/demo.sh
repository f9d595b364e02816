#!/usr/bin/env bash
# Runs latchd with examples/demo.yaml on 127.0.0.1:8080 in the foreground (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'TXT'

  latchd demo on http://127.0.0.1:8080 (Ctrl-C to stop). In another terminal, try:

    curl http://public.localhost:8080/hello?x=1          # bypass: the echo shows what the origin got
    curl http://public.localhost:8080/a/./b/../c         # the origin receives /a/c
    curl -i http://public.localhost:8080/admin/x         # 403: a more specific app blocks /admin/*
    curl -i http://public.localhost:8080/%61dmin/x       # 403 too: /%61dmin is /admin
    curl -i http://wiki.localhost:8080/                  # 401 with JSON: login required
    curl http://team1.apps.localhost:8080/               # wildcard host, admitted by IP
    curl -i http://unknown.localhost:8080/               # 404: no app, nothing forwarded
    curl -i --path-as-is 'http://public.localhost:8080/a%2fb'   # 400: encoded slash

  In a browser on this machine, open http://wiki.localhost:8080/ and sign in with any
  @example.com address: the 8-digit code appears in this terminal, on a line of its own
  ("PIN for you@example.com: 12345678 (app wiki, valid 10 minutes)"). The echo page shows
  what the app received (cf-access-authenticated-user-email, cf-access-jwt-assertion). Then
  open http://payroll.localhost:8080/ : no new code (single sign-on), and only
  alice@example.com gets in. http://auth.localhost:8080/ lists the apps you may open.
  Sign out at http://wiki.localhost:8080/cdn-cgi/access/logout

  From the command line, the same login through the browser handoff:
    BROWSER=xdg-open ./build/latch curl http://wiki.localhost:8080/hello
    ./build/latch --no-browser login http://wiki.localhost:8080/   # prints a URL to open

  Each request is logged below as one JSON line.

TXT
exec ./build/latchd --config examples/demo.yaml
