// The Errors pages in headless Chromium, on the example app: one `server` process books
// payments, and every declined one fails its batch's first attempt; the operator opens Errors,
// filters by topic (orders: none; payments: the declined ones), opens an error and follows its
// link to the topic explorer, which shows the declined payment.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Proc, browser, eventually, one, open, produce, run, screenshot, settings, startWeb,
} from '../harness.js';

const s = settings();
const ORDERS = 30;
const PAYMENTS = 10;
const DECLINED_EVERY = 5; // payments 4 and 9
const orders = `${s.prefix}orders`;
const payments = `${s.prefix}payments`;
const billing = `${s.prefix}billing`;

let web;
let server;
let base;
let chrome;
let page;
let produced = [];

before(async () => {
  await run(s, ['topics', 'migrate']);
  let answering;
  ({ web, base, answering } = await startWeb(s, 'errors-web'));
  server = new Proc(s, 'errors-server', ['server']);
  produced = [
    ...await produce(s, 'orders', ORDERS),
    ...await produce(s, 'payments', PAYMENTS, 0, DECLINED_EVERY),
  ];
  chrome = await browser(s);
  page = chrome.page;
  await answering();
});

after(async () => {
  await chrome?.close();
  await server?.stop('SIGTERM', 30_000).catch(() => server.stop('SIGKILL'));
  await web?.stop('SIGTERM', 10_000).catch(() => web.stop('SIGKILL'));
});

/** The error rows shown: topic, group, kind and the link to each one's page. */
async function errorRows() {
  const rows = [];
  for (const row of await page.locator('tr[data-testid="error-row"]').all()) {
    rows.push({
      topic: await row.getAttribute('data-topic'),
      group: await row.getAttribute('data-group'),
      kind: await row.getAttribute('data-kind'),
      at: Number(await row.getAttribute('data-at')),
      href: await one(row, 'a[data-testid="error-link"]').getAttribute('href'),
    });
  }
  return rows;
}

/** Fills the filter form (empty values clear a field) and applies it. */
async function filter({ group = '', topic = '' }) {
  await (await one(page, '[data-testid="filter-group"]').check()).fill(group);
  await (await one(page, '[data-testid="filter-topic"]').check()).fill(topic);
  await Promise.all([
    page.waitForURL(/\/errors\?/),
    (await one(page, '[data-testid="filter-apply"]').check()).click(),
  ]);
  assert.equal(await one(page, 'main[data-testid="page"]').getAttribute('data-page'), 'errors');
}

test('errors: filter by topic, open a declined payment\'s error, follow it to the message', async () => {
  await open(page, base, '/', 'dashboard');
  await (await one(page, 'a[data-testid="nav-errors"]').check()).click();
  await page.waitForURL(`${base}/errors`);
  const rows = await eventually('the declined payments\' errors are listed', async () => {
    await open(page, base, '/errors', 'errors');
    const found = await errorRows();
    assert.ok(found.some((r) => r.topic === payments), `rows: ${JSON.stringify(found)}`);
    return found;
  }, 60_000);
  for (let i = 1; i < rows.length; i += 1) {
    assert.ok(rows[i - 1].at >= rows[i].at, 'newest first');
  }
  await screenshot(page, s, 'errors-list');

  // Orders never fail: filtering by their topic shows none.
  await filter({ topic: orders });
  await one(page, '[data-testid="no-errors"]').check();
  assert.equal(new URL(page.url()).searchParams.get('topic'), orders);

  await filter({ group: billing, topic: payments });
  const filtered = await errorRows();
  assert.ok(filtered.length >= 1);
  for (const r of filtered) {
    assert.deepEqual([r.topic, r.group, r.kind], [payments, billing, 'batch']);
  }
  assert.equal(await one(page, '[data-testid="filter-topic"]').getAttribute('value'), payments,
    'the form keeps the filter');
  await screenshot(page, s, 'errors-filtered');

  await Promise.all([
    page.waitForURL(/\/errors\/\d+\/\d+$/),
    page.locator('a[data-testid="error-link"]').first().click(),
  ]);
  assert.equal(await one(page, 'main[data-testid="page"]').getAttribute('data-page'), 'error');
  const chain = await page.locator('ol[data-testid="error-chain"] > li').allTextContents();
  const match = /^payment (\d+) declined by the bank \(retried\)$/.exec(chain[0]);
  assert.ok(match, `chain: ${JSON.stringify(chain)}`);
  const id = Number(match[1]);
  assert.equal(id % DECLINED_EVERY, DECLINED_EVERY - 1, `payment ${id} is a declined one`);
  assert.equal(await one(page, '[data-testid="error-kind"]').text(), 'batch');
  assert.equal(await one(page, '[data-testid="error-attempt"]').int(), 1);
  assert.equal(await one(page, '[data-testid="error-group"]').text(), billing);
  assert.equal(await one(page, '[data-testid="error-topic"]').text(), payments);
  const message = produced.find((m) => m.topic === payments && JSON.parse(m.payload).payment === id);
  assert.equal(await one(page, '[data-testid="error-partition"]').int(), message.partition);
  const [first, last] = (await one(page, '[data-testid="error-offsets"]').text())
    .split('–').map(Number);
  assert.ok(first <= message.offset && message.offset <= (last ?? first),
    `the batch ${first}–${last} holds offset ${message.offset}`);
  await screenshot(page, s, 'errors-detail');

  await Promise.all([
    page.waitForURL(/\/topics\//),
    (await one(page, 'a[data-testid="explorer-link"]').check()).click(),
  ]);
  assert.equal(new URL(page.url()).pathname, `/topics/${payments}/${message.partition}`);
  assert.equal(new URL(page.url()).searchParams.get('offset'), String(first));
  const row = await one(page, `tr[data-testid="message-row"][data-offset="${message.offset}"]`).check();
  assert.deepEqual(JSON.parse(await one(row, '[data-testid="payload"]').text()),
    JSON.parse(message.payload));
  await screenshot(page, s, 'errors-explorer');
});

test('errors: the detail of a record that is not there is a 404 page', async () => {
  const response = await page.goto(`${base}/errors/0/999999999`);
  assert.equal(response.status(), 404);
  assert.equal(await one(page, 'main[data-testid="page"]').getAttribute('data-page'), 'error');
  await one(page, '[data-testid="problems"]').check();
});
