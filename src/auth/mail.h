/* Sending the one-time PIN (SPEC.md §6): `console` prints it to latchd's log (development),
 * smtp:// and smtps:// go through libcurl. Blocking: called on a background job. */
#ifndef LATCH_MAIL_H
#define LATCH_MAIL_H

#include "config/config-t.h"

/* 0 when the message was handed over; -1 with a log line otherwise. */
int mail_send_pin(const struct idp *idp, const char *to, const char *code, const char *app_name);

#endif
