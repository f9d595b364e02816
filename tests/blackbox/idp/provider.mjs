// A real OpenID Connect provider for latch's browser tests (oidc-provider 9), configured by the
// test: one confidential client `latch` (client_secret_basic, code flow, PKCE S256 required),
// the users of a JSON file ({"alice": {"email", "email_verified", "groups", "amr", "name"}}),
// and a minimal login page (type the account id, press "Sign in"): the login result carries the
// account's `amr`, so the ID token reports it. Every request is appended to a log file as one
// JSON line, so a test can count round trips (e.g. none during single sign-on).
//
// usage: node provider.mjs --port P --secret-file F --users F --redirect-uri URI[,URI…] --log F
//        [--host 127.0.0.1] [--issuer URL] [--mount /PREFIX]
// --mount serves the provider under /PREFIX too (a tenant of a multi-tenant provider), e.g.
// {issuer}/.well-known/openid-configuration when the issuer names a path. A user's
// email_verified is sent as the users file writes it: true, false, "true", "false", 1…
import fs from 'node:fs';
import http from 'node:http';
import { URL, URLSearchParams } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const oidcPath = require.resolve('oidc-provider', { paths: [new URL('../../', import.meta.url).pathname] });
const { default: Provider } = await import(oidcPath);

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const host = args.host || '127.0.0.1';
const port = Number(args.port);
const secret = fs.readFileSync(args['secret-file'], 'utf8').trim();
const users = JSON.parse(fs.readFileSync(args.users, 'utf8'));
const logFile = args.log;
const issuer = args.issuer || `http://${host}:${port}`;

function log(obj) {
  if (logFile) fs.appendFileSync(logFile, JSON.stringify({ time: Date.now() / 1000, ...obj }) + '\n');
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'latch',
    client_secret: secret,
    redirect_uris: args['redirect-uri'].split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub', 'amr'], // amr (from the login result) in every ID token, not only on request
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // email and groups in the ID token itself: latch reads only that
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['latch-test-cookie-key-0123456789'] },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  async findAccount(ctx, id) {
    const u = users[id];
    if (!u) return undefined;
    return {
      accountId: id,
      async claims() {
        const c = { sub: id, email: u.email, name: u.name || id };
        if ('email_verified' in u) c.email_verified = u.email_verified;
        if (u.groups) c.groups = u.groups;
        return c;
      },
    };
  },
  // No consent screen: the test's client is first-party; grant what it asked for.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const g = await ctx.oidc.provider.Grant.find(grantId);
      if (g) return g;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['email', 'email_verified', 'groups', 'name']);
    await grant.save();
    return grant;
  },
});
provider.on('grant.success', (ctx) => { if (process.env.IDP_DEBUG) log({ event: 'grant.success', id_token_claims: JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url')) }); });
provider.on('server_error', (ctx, err) => log({ event: 'server_error', error: String(err && err.stack || err) }));
provider.on('authorization.error', (ctx, err) => log({ event: 'authorization.error', error: String(err), detail: err.error_description }));
provider.on('grant.error', (ctx, err) => log({ event: 'grant.error', error: String(err), detail: err.error_description }));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Test IdP: sign in</title></head><body>
<h1>Test identity provider</h1>${error ? `<p id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Account <input id="login" name="login" autofocus></label>
<button id="submit" type="submit">Sign in</button></form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

const callback = provider.callback();
const mount = args.mount || '';
const server = http.createServer(async (req, res) => {
  if (mount && (req.url === mount || req.url.startsWith(mount + '/') || req.url.startsWith(mount + '?')))
    req.url = req.url.slice(mount.length) || '/';
  const url = new URL(req.url, issuer);
  log({ method: req.method, path: url.pathname, query: url.search });
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'login') throw new Error(`unexpected prompt ${details.prompt.name}`);
    if (!m[2]) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(loginPage(m[1]));
    }
    const form = await body(req);
    const id = form.get('login');
    if (!users[id]) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginPage(m[1], 'unknown account'));
    }
    log({ event: 'login', account: id });
    await provider.interactionFinished(req, res, {
      login: { accountId: id, amr: users[id].amr || ['pwd'], remember: false },
    }, { mergeWithLastSubmission: false });
  } catch (e) {
    log({ event: 'interaction_error', error: String(e && e.stack || e) });
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e));
  }
});
server.listen(port, host, () => {
  process.stdout.write(`listening ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
