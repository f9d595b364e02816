/* The exit statuses of latchd and latch: one list for both programs, so that a number means the
 * same whichever printed it (latchd(8) and latch(1) under EXIT STATUS, and each program's
 * --help, say the same). Each program uses those that apply to it. */
#ifndef LATCH_EXITCODE_H
#define LATCH_EXITCODE_H

enum latch_exit {
    LATCH_EXIT_OK = 0,
    LATCH_EXIT_FAILED = 1,   /* latchd: could not start, not running, a command refused;
                                latch: the network, the gateway, a local error */
    LATCH_EXIT_CONFIG = 2,   /* latchd: an invalid configuration, a reload refused */
    LATCH_EXIT_NO_LOGIN = 3, /* latch: the browser login did not complete in time */
    LATCH_EXIT_REFUSED = 4,  /* latch: the gateway refused (policy, a revoked or ended session) */
    LATCH_EXIT_NO_TOKEN = 5, /* latch token: none stored */
    LATCH_EXIT_NOT_TCP = 6,  /* latch tcp/ssh: the app is not a TCP application */
    LATCH_EXIT_TUNNEL_LOST = 7, /* latch tcp/ssh: the tunnel dropped mid-stream (cannot be resumed) */
    LATCH_EXIT_USAGE = 64,   /* both: a misused command line (EX_USAGE of sysexits.h) */
};

#endif
