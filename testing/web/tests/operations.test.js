// Commands from the UI in headless Chromium, on the example's fleet (two `server` processes and
// one `web` process against a real Kafka cluster): pause a partition from its group's page, see
// the process acknowledge it, produce to it and see it not consumed while the others are, resume
// it and see everything consumed; quiet a process from its page and see its partitions fall
// behind while the other process keeps up; stop it from its page (after a confirmation) and see
// the other process take over and consume everything. Steps run in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Proc, browser, eventually, one, open, produce, run, settings, startWeb,
} from '../harness.js';

const s = settings();
const orders = `${s.prefix}orders`;
const shop = `${s.prefix}shop`;
const FIRST = 40;

let web;
let servers = [];
let base;
let chrome;
let page;
let produced = [];
let paused; // the partition paused from the UI

before(async () => {
  await run(s, ['topics', 'migrate']);
  let answering;
  ({ web, base, answering } = await startWeb(s, 'ops-web'));
  servers = [1, 2].map((n) => new Proc(s, `ops-server-${n}`, ['server']));
  produced = await produce(s, 'orders', FIRST);
  chrome = await browser(s);
  page = chrome.page;
  await answering();
});

after(async () => {
  await chrome?.close();
  await Promise.all(servers.map((p) => p.stop('SIGKILL', 10_000).catch(() => {})));
  await web?.stop('SIGTERM', 10_000).catch(() => web.stop('SIGKILL'));
});

/** Saves one viewport of the page as `name`.png in the artifacts (docs/web shows them). */
async function screenshot(page, s, name) {
  await page.screenshot({ path: join(s.artifacts, `${name}.png`) });
}

/** Committed, high watermark, lag and owning process of each partition of the shop's group. */
async function partitions() {
  await open(page, base, `/groups/${encodeURIComponent(shop)}`, 'group');
  const found = [];
  for (const row of await page.locator('tr[data-testid="group-partition-row"]').all()) {
    found.push({
      partition: Number(await row.getAttribute('data-partition')),
      committed: await one(row, '[data-testid="committed"]').int(),
      highWatermark: await one(row, '[data-testid="high-watermark"]').int(),
      lag: await one(row, '[data-testid="lag"]').int(),
      owner: (await row.locator('a[href^="/processes/"]').count()) === 1
        ? (await row.locator('a[href^="/processes/"]').textContent()).trim() : null,
    });
  }
  return found.sort((a, b) => a.partition - b.partition);
}

/** How many produced orders went to `partition`. */
const producedTo = (partition) => produced.filter((m) => m.partition === partition).length;

/** Waits on the command page the click led to until the process acknowledged `done`. */
async function acknowledged(name) {
  await page.waitForURL(/\/commands\/[0-9a-f]{32}$/);
  const path = new URL(page.url()).pathname;
  await eventually(`${path} acknowledged`, async () => {
    await open(page, base, path, 'command');
    assert.equal(await one(page, '[data-testid="command-status"]').getAttribute('data-status'), 'done');
    await one(page, 'tr[data-testid="ack-row"]').check();
    assert.equal(await one(page, '[data-testid="ack-outcome"]').text(), 'done');
  }, 30_000);
  await screenshot(page, s, `operations-${name}`);
  return path;
}

/** Clicks `button` in the group page's row of `partition`. */
async function clickInRow(partition, button) {
  await open(page, base, `/groups/${encodeURIComponent(shop)}`, 'group');
  const row = `tr[data-testid="group-partition-row"][data-topic="${orders}"][data-partition="${partition}"]`;
  await (await one(page, `${row} [data-testid="${button}"]`).check()).click();
}

test('everything consumed, each partition owned by a live process', async () => {
  await eventually('all consumed and owned', async () => {
    const rows = await partitions();
    assert.equal(rows.length, 3);
    for (const r of rows) {
      assert.equal(r.highWatermark, producedTo(r.partition));
      assert.equal(r.lag, 0, `partition ${r.partition} lag`);
      assert.ok(r.owner, `partition ${r.partition} owned`);
    }
    assert.equal(new Set(rows.map((r) => r.owner)).size, 2, 'both servers hold partitions');
  }, 90_000);
});

test('pause a partition from the UI: acknowledged, and what is produced to it waits', async () => {
  paused = produced[0].partition;
  const before = (await partitions()).find((r) => r.partition === paused);
  await screenshot(page, s, 'operations-group');
  await clickInRow(paused, 'command-pause');
  const path = await acknowledged('pause-done');
  assert.match(await one(page, '[data-testid="command-action"]').text(), new RegExp(`pause ${shop}/${orders}/${paused}`));

  const more = await produce(s, 'orders', 60, FIRST);
  produced.push(...more);
  const waiting = more.filter((m) => m.partition === paused).length;
  assert.ok(waiting > 0, 'the keys reach the paused partition');
  await eventually('the other partitions consumed, the paused one waits', async () => {
    for (const r of await partitions()) {
      assert.equal(r.highWatermark, producedTo(r.partition));
      assert.equal(r.lag, r.partition === paused ? waiting : 0, `partition ${r.partition} lag`);
    }
  }, 30_000);
  await new Promise((resolve) => { setTimeout(resolve, 3_000); });
  const row = (await partitions()).find((r) => r.partition === paused);
  assert.equal(row.committed, before.committed, 'nothing consumed while paused');
  assert.equal(row.lag, waiting);
  await screenshot(page, s, 'operations-paused-lag');

  const owner = row.owner;
  await eventually('the owner reports the operator pause', async () => {
    await open(page, base, `/processes/${encodeURIComponent(owner)}`, 'process');
    const cell = `tr[data-testid="partition-row"][data-topic="${orders}"][data-partition="${paused}"] [data-testid="paused"]`;
    assert.equal(await one(page, cell).text(), 'operator');
  }, 20_000);
  await screenshot(page, s, 'operations-process-paused');
  await open(page, base, '/commands', 'commands');
  await one(page, `tr[data-testid="command-row"][data-command-id="${path.split('/').at(-1)}"]`).check();
});

test('resume it from the UI: everything consumed', async () => {
  await clickInRow(paused, 'command-resume');
  await acknowledged('resume-done');
  await eventually('lag 0 everywhere', async () => {
    for (const r of await partitions()) {
      assert.equal(r.highWatermark, producedTo(r.partition));
      assert.equal(r.committed, r.highWatermark, `partition ${r.partition} committed`);
    }
  }, 30_000);
  await screenshot(page, s, 'operations-resumed');
});

test('quiet a process from the UI: its partitions fall behind, the other process keeps up', async () => {
  const rows = await partitions();
  const quieted = rows[0].owner;
  const own = rows.filter((r) => r.owner === quieted).map((r) => r.partition);
  await open(page, base, `/processes/${encodeURIComponent(quieted)}`, 'process');
  await (await one(page, '[data-testid="command-quiet"]').check()).click();
  await acknowledged('quiet-done');
  await eventually('the process reports quieting', async () => {
    await open(page, base, `/processes/${encodeURIComponent(quieted)}`, 'process');
    assert.equal(await one(page, '[data-testid="state"]').text(), 'quieting');
  }, 20_000);

  const more = await produce(s, 'orders', 60, FIRST + 60);
  produced.push(...more);
  const behind = (p) => more.filter((m) => m.partition === p).length;
  assert.ok(own.some((p) => behind(p) > 0), 'orders reach the quieted process');
  await eventually('the quieted partitions wait, the others are consumed', async () => {
    for (const r of await partitions()) {
      assert.equal(r.lag, own.includes(r.partition) ? behind(r.partition) : 0, `partition ${r.partition} lag`);
    }
  }, 30_000);
  await new Promise((resolve) => { setTimeout(resolve, 3_000); });
  for (const r of await partitions()) {
    assert.equal(r.lag, own.includes(r.partition) ? behind(r.partition) : 0, `still: partition ${r.partition}`);
  }
  await screenshot(page, s, 'operations-quiet-lag');

  // Stop it from the UI (the browser asks first): the other process takes its partitions over.
  await open(page, base, `/processes/${encodeURIComponent(quieted)}`, 'process');
  page.once('dialog', (dialog) => dialog.accept());
  await (await one(page, '[data-testid="command-stop"]').check()).click();
  await acknowledged('stop-done');
  const server = servers.find((p) => quieted.split(':').at(-2) === String(p.pid));
  assert.deepEqual(await server.exit, { code: 0, signal: null });
  await eventually('everything consumed by the remaining process', async () => {
    for (const r of await partitions()) {
      assert.equal(r.highWatermark, producedTo(r.partition));
      assert.equal(r.lag, 0, `partition ${r.partition} lag`);
      assert.notEqual(r.owner, quieted);
    }
  }, 90_000);
  await screenshot(page, s, 'operations-after-stop');
  await open(page, base, '/commands', 'commands');
  assert.equal(await page.locator('tr[data-testid="command-row"]').count(), 4);
  assert.equal(await page.locator('[data-testid="command-status"][data-status="done"]').count(), 4);
  await screenshot(page, s, 'operations-commands');
});
