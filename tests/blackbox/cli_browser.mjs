// The browser half of `latch login` for the CLI black-box tests (test_cli_*.py) and bench/cli.sh:
// `node cli_browser.mjs URL` opens the confirmation URL that latch printed or handed to $BROWSER
// in a headless Chromium (playwright-core), signs in with the one-time PIN that latchd's console
// mailer printed to its stderr, reads the verification code the page shows, and clicks Authorize.
//
// Environment (all optional but the first):
//   LATCH_TEST_LATCHD_STDERR  latchd's stderr file, where "one-time PIN for <email> (app …): N" lands
//                             (several nodes: their files joined with ':', PINs are read from all)
//   LATCH_TEST_EMAIL          who signs in (default carol@example.com)
//   LATCH_TEST_RECORD         file to which one JSON line per run is appended: {url, code, host_shown,
//                             t_click (epoch seconds, ms precision, taken just before the POST), status,
//                             text, ok, error}
//   LATCH_TEST_EXPECT_CODE    the code latch printed: refuse to authorize when the page shows another
//   LATCH_TEST_MODE           authorize (default) | view (stop at the confirmation page, never POST)
//   LATCH_TEST_COOKIES_OUT    file to write the browser's cookies to (JSON) at the end
//   LATCH_TEST_DEADLINE_S     give up after this many seconds (default 60)
//   LATCH_TEST_HOST_RULES     Chromium's --host-resolver-rules (e.g. "MAP *.localhost 127.0.0.2": this
//                             browser reaches another gateway node than the CLI, which goes to 127.0.0.1)
//   CHROMIUM                  the browser binary (default /usr/bin/chromium)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(here, '..')] }));

const url = process.argv[2];
const env = process.env;
const email = env.LATCH_TEST_EMAIL || 'carol@example.com';
const mode = env.LATCH_TEST_MODE || 'authorize';
const record = { url, pid: process.pid, mode, ok: false, steps: [] };
const t0 = Date.now();
function step(name) { record.steps.push([name, Date.now() - t0]); }
const deadline = Number(env.LATCH_TEST_DEADLINE_S || 60);

function now() { return (performance.timeOrigin + performance.now()) / 1000; }

function save() {
  if (env.LATCH_TEST_RECORD) fs.appendFileSync(env.LATCH_TEST_RECORD, JSON.stringify(record) + '\n');
}

function pins() {
  if (!env.LATCH_TEST_LATCHD_STDERR) return [];
  const text = env.LATCH_TEST_LATCHD_STDERR.split(':').filter(Boolean)
    .map((f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } }).join('\n');
  const esc = email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp('one-time PIN for ' + esc + ' \\(app [^)]*\\): (\\d{8})', 'gi');
  return [...text.matchAll(re)].map((m) => m[1]);
}

async function waitPin(before) {
  const end = Date.now() + 15000;
  while (Date.now() < end) {
    const p = pins();
    if (p.length > before) return p[p.length - 1];
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no new PIN for ${email} in ${env.LATCH_TEST_LATCHD_STDERR}`);
}

const timer = setTimeout(() => { record.error = `gave up after ${deadline}s`; save(); process.exit(3); }, deadline * 1000);
let browser, context;
try {
  if (!url) throw new Error('usage: node cli_browser.mjs URL');
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-proxy-server',
      ...(env.LATCH_TEST_HOST_RULES ? ['--host-resolver-rules=' + env.LATCH_TEST_HOST_RULES] : [])],
  });
  step('launched');
  context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  let resp = await page.goto(url, { waitUntil: 'load' });
  record.first_status = resp ? resp.status() : null;
  step('first page');
  if (await page.locator('input[name=email]').count()) { // not signed in yet: the one-time PIN
    const before = pins().length;
    await page.fill('input[name=email]', email);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]);
    step('email sent');
    const pin = await waitPin(before);
    step('pin read');
    await page.fill('input[name=code]', pin);
    resp = (await Promise.all([page.waitForNavigation({ waitUntil: 'load' }),
      page.click('form:first-of-type button[type=submit]')]))[0];
  }
  step('signed in');
  record.status = resp ? resp.status() : null;
  record.page_url = page.url();
  record.text = (await page.evaluate(() => document.body ? document.body.innerText : '')).slice(0, 2000);
  if (!(await page.locator('div.code').count())) throw new Error('no confirmation page: ' + record.text.slice(0, 300));
  record.confirm_text = record.text;
  record.code = (await page.locator('div.code').innerText()).trim();
  record.host_shown = (await page.locator('b.host').innerText()).trim();
  if (env.LATCH_TEST_EXPECT_CODE && env.LATCH_TEST_EXPECT_CODE !== record.code)
    throw new Error(`the page shows ${record.code}, latch printed ${env.LATCH_TEST_EXPECT_CODE}: not authorizing`);
  if (mode === 'authorize') {
    const nav = page.waitForNavigation({ waitUntil: 'load' });
    record.t_click = now();
    await page.click('form[action="/cdn-cgi/access/cli"] button[type=submit]');
    const r = await nav;
    record.t_done = now();
    step('authorized');
    record.status = r ? r.status() : null;
    record.text = (await page.evaluate(() => document.body ? document.body.innerText : '')).slice(0, 2000);
    record.ok = record.status === 200 && record.text.includes('You are signed in');
  } else {
    record.ok = true;
  }
  if (env.LATCH_TEST_COOKIES_OUT) fs.writeFileSync(env.LATCH_TEST_COOKIES_OUT, JSON.stringify(await context.cookies()));
} catch (e) {
  record.error = String(e && e.message || e);
}
step('end');
save();
clearTimeout(timer);
if (browser) await browser.close().catch(() => {});
process.exit(record.ok ? 0 : 1);
