/* One sequence for accepting a token (verify.h). */
#include "token/verify.h"

#include "token/revoke.h"

#include <string.h>

enum token_status token_accept(const struct token *t, time_t now, const struct token_want *want)
{
    enum token_status st = token_check(t, want->iss, want->type, want->aud, now);
    if (st != TOKEN_OK)
        return st;
    if (want->session && (!t->email || !t->identity_nonce || strlen(t->identity_nonce) != 32))
        return TOKEN_BAD_CLAIMS;
    if (want->rev && revocations_check(want->rev, want->seps, t->email, want->app, t->identity_nonce, t->iat))
        return TOKEN_REVOKED;
    return TOKEN_OK;
}

enum token_status token_verify(const struct keyset *ks, const char *tok, size_t len, time_t now,
                               const struct token_want *want, struct token *out)
{
    enum token_status st = jwt_decode(ks, tok, len, now, out);
    if (st != TOKEN_OK)
        return st;
    st = token_accept(out, now, want);
    if (st != TOKEN_OK)
        token_free(out);
    return st;
}
