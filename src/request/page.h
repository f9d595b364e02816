/* Pieces of the gateway's own pages, written into a strbuf: escaping, buttons, initials, and
 * the bodies every transport and endpoint share (an error's message, "try again", a refusal).
 * The page around them (layout, branding) is the transport's (endpoint_page). */
#ifndef LATCH_PAGE_H
#define LATCH_PAGE_H

#include "core/strbuf.h"

#include <stdbool.h>
#include <stddef.h>

/* HTML-escapes s (n bytes of it) into sb. */
void page_html(struct strbuf *sb, const char *s);
void page_html_n(struct strbuf *sb, const char *s, size_t n);

/* An error's body: the title as a heading, the message under it (both escaped). */
void page_message(struct strbuf *sb, const char *title, const char *message);
/* A link that looks like a button (primary: filled in the accent colour; else outlined). */
void page_button(struct strbuf *sb, const char *href, const char *label, bool primary);
/* The first character of s (a whole UTF-8 sequence), an ASCII letter in capitals. */
void page_first(struct strbuf *sb, const char *s);
/* The first letter or digit of s, capitalized (an app's or an organization's initial). */
void page_initial(struct strbuf *sb, const char *s);
/* A "try again later" page body (title, message, a button that loads the page again). */
void page_busy_html(struct strbuf *sb, const char *title, const char *message);
/* The head of a refusal (app denied, path blocked): who is refused (a person by email, a
 * service token by name, else nobody signed in) and the app by its display name, never the
 * policy; the caller adds the next steps (buttons). */
void page_denied_html(struct strbuf *sb, const char *email, const char *service, const char *app_label);

#endif
