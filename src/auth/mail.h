/* Sending the one-time PIN (SPEC.md §6): `console` prints it to latchd's stderr (development:
 * a log line, and one plain line a person sees at a glance), smtp:// and smtps:// go through
 * libcurl. Blocking: called on a background job. */
#ifndef LATCH_MAIL_H
#define LATCH_MAIL_H

#include "config/config-t.h"

/* `app` is the app's name (for the operator), `label` what the person knows it as (its
 * display name). 0 when the message was handed over; -1 with a log line otherwise. */
int mail_send_pin(const struct idp *idp, const char *to, const char *code, const char *app,
                  const char *label);

#endif
