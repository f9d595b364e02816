/* Pieces of the gateway's own pages (page.h). */
#include "request/page.h"

#include <string.h>

void page_html(struct strbuf *sb, const char *s)
{
    page_html_n(sb, s, strlen(s));
}

void page_html_n(struct strbuf *sb, const char *s, size_t n)
{
    for (const char *end = s + n; s < end; s++) {
        switch (*s) {
        case '<': sb_adds(sb, "&lt;"); break;
        case '>': sb_adds(sb, "&gt;"); break;
        case '&': sb_adds(sb, "&amp;"); break;
        case '"': sb_adds(sb, "&quot;"); break;
        case '\'': sb_adds(sb, "&#39;"); break;
        default: sb_add(sb, s, 1);
        }
    }
}

void page_message(struct strbuf *sb, const char *title, const char *message)
{
    sb_adds(sb, "<h1>");
    page_html(sb, title);
    sb_adds(sb, "</h1><p>");
    page_html(sb, message);
    sb_adds(sb, "</p>");
}

void page_first(struct strbuf *sb, const char *s)
{
    size_t n = 1;
    while (s[n] && ((unsigned char)s[n] & 0xc0) == 0x80)
        n++;
    char one[2] = { s[0] >= 'a' && s[0] <= 'z' ? (char)(s[0] - 32) : s[0], 0 };
    if (n == 1)
        page_html(sb, one);
    else
        sb_add(sb, s, n);
}

void page_initial(struct strbuf *sb, const char *s)
{
    const char *p = s; /* "*.apps.example.com": its first letter */
    while (*p && (unsigned char)*p < 0x80 && !((*p | 32) >= 'a' && (*p | 32) <= 'z') && !(*p >= '0' && *p <= '9'))
        p++;
    page_first(sb, *p ? p : "?");
}

void page_button(struct strbuf *sb, const char *href, const char *label, bool primary)
{
    sb_adds(sb, primary ? "<a class=\"button\" href=\"" : "<a class=\"button secondary\" href=\"");
    page_html(sb, href);
    sb_adds(sb, "\">");
    page_html(sb, label);
    sb_adds(sb, "</a>");
}

void page_busy_html(struct strbuf *sb, const char *title, const char *message)
{
    page_message(sb, title, message);
    /* an empty href is this very address: the same GET again */
    sb_adds(sb, "<a class=\"button\" href=\"\">Try again</a>");
}

void page_denied_html(struct strbuf *sb, const char *email, const char *service, const char *app_label)
{
    sb_adds(sb, "<h1>Access denied</h1><p>");
    if (email) {
        sb_adds(sb, "You are signed in as <b>");
        page_html(sb, email);
        sb_adds(sb, "</b>, and that account may not use <b>");
    } else if (service) {
        sb_adds(sb, "The service token <b>");
        page_html(sb, service);
        sb_adds(sb, "</b> may not use <b>");
    } else {
        sb_adds(sb, "<b>");
    }
    page_html(sb, app_label);
    sb_adds(sb, email || service ? "</b>.</p>" : "</b> is not open to you from here.</p>");
    sb_adds(sb, "<p>If you need it, ask your administrator for access.</p>");
}
