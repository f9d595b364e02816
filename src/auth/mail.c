/* The PIN mailer of mail.h. */
#include "auth/mail.h"

#include "core/log.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mail__body {
    const char *p;
    size_t left;
};

static size_t mail__read(char *out, size_t size, size_t n, void *arg)
{
    struct mail__body *b = arg;
    size_t take = size * n < b->left ? size * n : b->left;
    memcpy(out, b->p, take);
    b->p += take;
    b->left -= take;
    return take;
}

/* The console mailer: the log line (which scripts read), then the same PIN on a line of its
 * own, in bold on a terminal, so that a person running the demo sees it among the JSON. One
 * write each: lines of other threads do not cut into them. */
static void mail__console(const char *to, const char *code, const char *app)
{
    log_msg("info", "one-time PIN for %s (app %s): %s  [console mailer: development only]", to,
            app, code);
    bool tty = isatty(2);
    char line[1024];
    int n = snprintf(line, sizeof line, "%sPIN for %s: %s (app %s, valid 10 minutes)%s\n",
                     tty ? "\033[1m" : "", to, code, app, tty ? "\033[0m" : "");
    if (n > 0 && (size_t)n < sizeof line && write(2, line, (size_t)n) < 0) {
        /* stderr is gone: the log line above met the same fate */
    }
}

int mail_send_pin(const struct idp *idp, const char *to, const char *code, const char *app,
                  const char *label)
{
    if (!idp->mail || !strcmp(idp->mail, "console")) {
        mail__console(to, code, app);
        return 0;
    }
    char date[64], msg[2048];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *from = idp->from ? idp->from : "access@localhost";
    int n = snprintf(msg, sizeof msg,
                     "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: Your sign-in code: %s\r\n"
                     "X-Latch-App: %s\r\n" /* for mail filters: the app's name in the configuration */
                     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                     "Your code to sign in to %s is:\r\n\r\n    %s\r\n\r\n"
                     "It works once, for 10 minutes. If you did not ask for it, ignore this message.\r\n",
                     date, from, to, code, app, label, code);
    struct mail__body body = { msg, (size_t)n };
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    char fromaddr[512];
    snprintf(fromaddr, sizeof fromaddr, "<%s>", from);
    curl_easy_setopt(curl, CURLOPT_URL, idp->mail);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, fromaddr);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, mail__read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &body);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        log_msg("error", "mailing the one-time PIN through %s failed: %s", idp->mail, curl_easy_strerror(rc));
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? 0 : -1;
}
