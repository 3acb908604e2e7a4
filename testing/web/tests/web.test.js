// Every page of the web UI in headless Chromium, on a running fleet of the example app: three
// `server` processes and one `web` process against a real Kafka cluster. The steps run in order
// (each one's fleet is the previous one's); every figure is compared with what the test
// produced, consumed, killed or stopped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Proc, browser, eventually, number, one, open, produce, run, screenshot, settings, startWeb,
} from '../harness.js';

const s = settings();
const ORDERS = 90;
const PAYMENTS = 60;
const LATE_ORDERS = 25;
const orders = `${s.prefix}orders`;
const payments = `${s.prefix}payments`;
const shop = `${s.prefix}shop`;
const billing = `${s.prefix}billing`;
// report_interval 1 s: stale after 3 × 1 s + 5 s; one refresh and a report's way on top.
const STALE_WITHIN_MS = 20_000;

let web;
let servers = [];
let base;
let chrome;
let page;
let produced = [];
let processIds = new Map(); // pid -> process id shown by the UI

before(async () => {
  await run(s, ['topics', 'migrate']);
  let answering;
  ({ web, base, answering } = await startWeb(s, 'web'));
  servers = [1, 2, 3].map((n) => new Proc(s, `server-${n}`, ['server']));
  produced = [
    ...await produce(s, 'orders', ORDERS),
    ...await produce(s, 'payments', PAYMENTS, 0, 20),
  ];
  chrome = await browser(s);
  page = chrome.page;
  await answering();
});

after(async () => {
  await chrome?.close();
  await Promise.all(servers.map((p) => p.stop('SIGKILL', 10_000).catch(() => {})));
  await web?.stop('SIGTERM', 10_000).catch(() => web.stop('SIGKILL'));
});

/** Committed, high watermark and lag of every partition row of `/groups/{group}`. */
async function groupPartitions(group) {
  await open(page, base, `/groups/${encodeURIComponent(group)}`, 'group');
  const rows = page.locator('tr[data-testid="group-partition-row"]');
  const found = [];
  for (const row of await rows.all()) {
    found.push({
      topic: await row.getAttribute('data-topic'),
      partition: Number(await row.getAttribute('data-partition')),
      committed: await one(row, '[data-testid="committed"]').int(),
      highWatermark: await one(row, '[data-testid="high-watermark"]').int(),
      lag: await one(row, '[data-testid="lag"]').int(),
    });
  }
  return found.sort((a, b) => a.partition - b.partition);
}

/** The lag `/groups` shows for `group`. */
async function groupLag(group) {
  await open(page, base, '/groups', 'groups');
  return one(page, `tr[data-testid="group-row"][data-group="${group}"]`)
    .check().then((row) => one(row, '[data-testid="lag"]').int());
}

/** The process rows of `/processes`: id, stale flag and partition count. */
async function processRows() {
  await open(page, base, '/processes', 'processes');
  const rows = [];
  for (const row of await page.locator('tr[data-testid="process-row"]').all()) {
    rows.push({
      id: await row.getAttribute('data-process-id'),
      stale: await row.getAttribute('data-stale'),
      partitions: await one(row, '[data-testid="partition-count"]').int(),
    });
  }
  return rows;
}

/** The pid in a process id `<host>:<pid>:<random>`. */
const pidOf = (id) => Number(id.split(':').at(-2));

test('processes: the three servers, live, two partitions each', async () => {
  const rows = await eventually('three live processes with two partitions each', async () => {
    const found = await processRows();
    assert.equal(found.length, 3, `rows: ${JSON.stringify(found)}`);
    assert.deepEqual(found.map((r) => r.stale), ['false', 'false', 'false']);
    // Two groups of 3 partitions over 3 members: one of each per process, once rebalanced
    // (right after the first join one process holds all six).
    assert.deepEqual(found.map((r) => r.partitions), [2, 2, 2]);
    return found;
  }, 60_000);
  assert.deepEqual(rows.map((r) => pidOf(r.id)).sort(), servers.map((p) => p.pid).sort());
  processIds = new Map(rows.map((r) => [pidOf(r.id), r.id]));
  assert.equal(await one(page, '[data-testid="process-count"]').int(), 3);
  assert.equal(await one(page, '[data-testid="stale-count"]').int(), 0);
  await screenshot(page, s, 'processes');

  const id = processIds.get(servers[0].pid);
  await open(page, base, `/processes/${encodeURIComponent(id)}`, 'process');
  assert.match(await page.locator('main').innerText(), new RegExp(orders));
  await screenshot(page, s, 'process');
});

test('groups: every produced message consumed and committed (lag 0)', async () => {
  for (const [group, topic, count] of [[shop, orders, ORDERS], [billing, payments, PAYMENTS]]) {
    await eventually(`${group} consumed everything`, async () => {
      const rows = await groupPartitions(group);
      assert.deepEqual(rows.map((r) => [r.topic, r.partition]), [[topic, 0], [topic, 1], [topic, 2]]);
      for (const r of rows) {
        const expected = produced.filter((m) => m.topic === topic && m.partition === r.partition);
        assert.equal(r.highWatermark, expected.length, `${topic}/${r.partition} high watermark`);
        assert.equal(r.committed, r.highWatermark, `${topic}/${r.partition} committed`);
        assert.equal(r.lag, 0, `${topic}/${r.partition} lag`);
      }
      assert.equal(rows.reduce((n, r) => n + r.highWatermark, 0), count);
    }, 60_000);
    assert.equal(await groupLag(group), 0);
  }
  await screenshot(page, s, 'groups');
});

test('dashboard: three processes, rates and charts', async () => {
  await open(page, base, '/', 'dashboard');
  assert.equal(await one(page, '[data-testid="process-count"]').int(), 3);
  assert.equal(await number(page, '[data-testid="total-lag"]'), 0);
  assert.ok(await number(page, '[data-testid="messages-rate"]') >= 0);
  assert.ok(await number(page, '[data-testid="errors-rate"]') >= 0);
  for (const chart of ['chart-messages', 'chart-errors', 'chart-lag']) {
    await one(page, `svg[data-testid="${chart}"]`).check();
  }
  for (const nav of ['dashboard', 'processes', 'groups', 'topics', 'cluster', 'health']) {
    await one(page, `a[data-testid="nav-${nav}"]`).check();
  }
  await screenshot(page, s, 'dashboard');
});

test('topics: the explorer shows a produced message, key, payload and all', async () => {
  await open(page, base, '/topics', 'topics');
  assert.match(await page.locator('main').innerText(), new RegExp(orders));
  await screenshot(page, s, 'topics');
  await open(page, base, `/topics/${orders}`, 'topic');
  await screenshot(page, s, 'topic');

  const message = produced.find((m) => m.topic === orders && JSON.parse(m.payload).order === 42);
  const path = `/topics/${orders}/${message.partition}?offset=${message.offset}`;
  await open(page, base, `${path}&format=text`, 'browse');
  const row = await one(page, `tr[data-testid="message-row"][data-offset="${message.offset}"]`).check();
  assert.equal(await one(row, '[data-testid="key"]').text(), message.key);
  assert.equal(await one(row, '[data-testid="payload"]').text(), message.payload);
  await one(row, '[data-testid="headers"]').check();
  await open(page, base, `${path}&format=json`, 'browse');
  const json = await one(page, `tr[data-testid="message-row"][data-offset="${message.offset}"] [data-testid="payload"]`).text();
  assert.deepEqual(JSON.parse(json), JSON.parse(message.payload));
  await screenshot(page, s, 'browse');
});

test('cluster: every broker, the shop\'s topics fully replicated', async () => {
  await open(page, base, '/cluster', 'cluster');
  assert.equal(await one(page, '[data-testid="broker-count"]').int(), s.brokers, 'brokers');
  for (const topic of [orders, payments]) {
    const row = await one(page, `tr[data-testid="topic-row"][data-topic="${topic}"]`).check();
    assert.equal(await one(row, '[data-testid="under-replicated"]').int(), 0, `${topic} under-replicated`);
  }
  await screenshot(page, s, 'cluster');
});

test('health: ok, then a server killed with SIGKILL is flagged stale', async () => {
  await eventually('health is ok', async () => {
    await open(page, base, '/health', 'health');
    assert.equal(await page.locator('ul[data-testid="stale-processes"] > li').count(), 0);
    assert.equal(await one(page, '[data-testid="health-verdict"]').text(), 'ok');
  }, 30_000);

  const killed = servers[0];
  const id = processIds.get(killed.pid);
  const exit = await killed.stop('SIGKILL', 10_000);
  assert.equal(exit.signal, 'SIGKILL');
  const killedAt = Date.now();
  await eventually('the killed server is stale', async () => {
    await open(page, base, '/health', 'health');
    await one(page, `ul[data-testid="stale-processes"] > li[data-process-id="${id}"]`).check();
    assert.equal(await one(page, '[data-testid="health-verdict"]').text(), 'problems');
  }, STALE_WITHIN_MS);
  const staleAfter = Date.now() - killedAt;
  console.log(`stale ${staleAfter} ms after the kill`);
  await screenshot(page, s, 'health');

  const rows = await processRows();
  assert.deepEqual(rows.map((r) => [r.id, r.stale]).sort(),
    [...processIds.values()].map((p) => [p, p === id ? 'true' : 'false']).sort());
  assert.equal(await one(page, '[data-testid="process-count"]').int(), 2);
  assert.equal(await one(page, '[data-testid="stale-count"]').int(), 1);
  await screenshot(page, s, 'processes-stale');

  // The dashboard again, with some samples in its charts and the fleet's errors (declined payments).
  await open(page, base, '/', 'dashboard');
  assert.equal(await one(page, '[data-testid="process-count"]').int(), 2);
  await screenshot(page, s, 'dashboard-late');
});

test('processes: a server stopped cleanly leaves at once', async () => {
  const stopped = servers[1];
  const exit = await stopped.stop('SIGTERM', 60_000);
  assert.deepEqual(exit, { code: 0, signal: null });
  const id = processIds.get(stopped.pid);
  await eventually('the stopped server left', async () => {
    const rows = await processRows();
    assert.ok(!rows.some((r) => r.id === id), `${id} still shown`);
    assert.equal(rows.length, 2);
    assert.equal(await one(page, '[data-testid="process-count"]').int(), 1);
    assert.equal(await one(page, '[data-testid="stale-count"]').int(), 1);
  }, 10_000);
});

test('groups: lag read from the cluster while every server is down', async () => {
  const exit = await servers[2].stop('SIGTERM', 60_000);
  assert.deepEqual(exit, { code: 0, signal: null });
  const late = await produce(s, 'orders', LATE_ORDERS, ORDERS);
  await eventually(`${shop} lags by the ${LATE_ORDERS} late orders`, async () => {
    const rows = await groupPartitions(shop);
    assert.equal(rows.length, 3);
    for (const r of rows) {
      const all = produced.filter((m) => m.topic === orders && m.partition === r.partition);
      const behind = late.filter((m) => m.partition === r.partition).length;
      assert.equal(r.committed, all.length, `${orders}/${r.partition} committed`);
      assert.equal(r.highWatermark, all.length + behind, `${orders}/${r.partition} high watermark`);
      assert.equal(r.lag, behind, `${orders}/${r.partition} lag`);
    }
  }, 20_000);
  await screenshot(page, s, 'group');
  assert.equal(await groupLag(shop), LATE_ORDERS);
  assert.equal(await groupLag(billing), 0);
  await screenshot(page, s, 'groups-lag');
});

test('the web process logged no errors', async () => {
  // It once logged librdkafka's end-of-partition report at ERROR each time its reader caught up.
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const log = readFileSync(join(s.artifacts, 'logs', 'web.log'), 'utf8');
  const errors = log.split('\n').filter((line) => /\bERROR\b/.test(line));
  assert.deepEqual(errors, [], `web.log has ERROR lines:\n${errors.join('\n')}`);
});
