// A real browser for latch's tests: Debian's chromium driven by playwright-core, controlled by
// the Python test through JSON lines on stdin/stdout (one request, one answer), so a test can
// take a step, look at latchd's logs, then take the next one.
//
// request:  {"id": 1, "op": "goto", "ctx": "a", "url": "http://app.localhost:8080/"}
// answer:   {"id": 1, "ok": true, ...} or {"id": 1, "ok": false, "error": "..."}
// ops: context {ctx, viewport?, phone?} (phone: a 390x844 touch screen that honours
//      <meta name=viewport>, as a real phone does), close_context {ctx}, goto {ctx, url}, fill {ctx, selector, value},
//      click {ctx, selector}, submit {ctx, selector} (click + wait for the navigation),
//      page {ctx} -> {url, status, title, html, text}, screenshot {ctx, path, full_page?},
//      cookies {ctx} -> {cookies}, add_cookies {ctx, cookies}, navigations {ctx} -> [{url, status}],
//      frames {ctx} -> {frames: [url of every frame but the main one]},
//      eval {ctx, expr} -> {value} (a JavaScript expression evaluated in the page), quit.
import readline from 'node:readline';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require(require.resolve('playwright-core', { paths: [new URL('../../', import.meta.url).pathname] }));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--no-proxy-server'],
});

const contexts = new Map();

async function ctxOf(name, viewport, phone) {
  let c = contexts.get(name);
  if (!c) {
    const context = await browser.newContext(phone
      ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, ignoreHTTPSErrors: true }
      : { viewport: viewport || { width: 1000, height: 720 }, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    c = { context, page, navs: [] };
    page.on('response', (r) => {
      const req = r.request();
      if (req.isNavigationRequest() && req.frame() === page.mainFrame()) c.navs.push({ url: r.url(), status: r.status(), location: r.headers().location || null });
    });
    contexts.set(name, c);
  }
  return c;
}

function lastStatus(c) {
  const n = c.navs[c.navs.length - 1];
  return n ? n.status : null;
}

const ops = {
  async context(m) { await ctxOf(m.ctx, m.viewport, m.phone); return {}; },
  async close_context(m) { const c = contexts.get(m.ctx); if (c) { await c.context.close(); contexts.delete(m.ctx); } return {}; },
  async goto(m) {
    const c = await ctxOf(m.ctx);
    const mark = c.navs.length;
    const r = await c.page.goto(m.url, { waitUntil: 'load' });
    return { url: c.page.url(), status: r ? r.status() : lastStatus(c), chain: c.navs.slice(mark) };
  },
  async fill(m) { const c = await ctxOf(m.ctx); await c.page.fill(m.selector, m.value); return {}; },
  async click(m) { const c = await ctxOf(m.ctx); await c.page.click(m.selector); return {}; },
  async submit(m) {
    const c = await ctxOf(m.ctx);
    const mark = c.navs.length;
    await Promise.all([c.page.waitForNavigation({ waitUntil: 'load' }), c.page.click(m.selector)]);
    return { url: c.page.url(), status: lastStatus(c), chain: c.navs.slice(mark) };
  },
  async page(m) {
    const c = await ctxOf(m.ctx);
    return { url: c.page.url(), status: lastStatus(c), title: await c.page.title(), html: await c.page.content(),
      text: await c.page.evaluate(() => document.body ? document.body.innerText : '') };
  },
  async screenshot(m) { const c = await ctxOf(m.ctx); await c.page.screenshot({ path: m.path, fullPage: !!m.full_page }); return {}; },
  async cookies(m) { const c = await ctxOf(m.ctx); return { cookies: await c.context.cookies() }; },
  async add_cookies(m) { const c = await ctxOf(m.ctx); await c.context.addCookies(m.cookies); return {}; },
  async navigations(m) { const c = await ctxOf(m.ctx); return { navs: c.navs }; },
  async frames(m) {
    const c = await ctxOf(m.ctx);
    return { frames: c.page.frames().filter((f) => f !== c.page.mainFrame()).map((f) => f.url()) };
  },
  async eval(m) { const c = await ctxOf(m.ctx); return { value: await c.page.evaluate(m.expr) }; },
  async quit() { await browser.close(); setTimeout(() => process.exit(0), 10); return {}; },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  let out;
  try {
    out = { id: m.id, ok: true, ...(await ops[m.op](m)) };
  } catch (e) {
    out = { id: m.id, ok: false, error: String(e && e.message || e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
rl.on('close', async () => { await browser.close().catch(() => {}); process.exit(0); });
process.stdout.write(JSON.stringify({ id: 0, ok: true, ready: true }) + '\n');
