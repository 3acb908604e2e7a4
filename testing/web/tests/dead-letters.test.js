// A dead letter republished from the UI, in headless Chromium, on the example app against a
// real Kafka cluster: a poison payment fails every attempt and lands in the payments' DLQ; the
// operator opens the explorer, the server is stopped to deploy a fix, the operator clicks
// republish in two tabs (the second click is refused and says who republished it), the server
// starts again fixed, and the payment is booked exactly once more — counted in the file the
// billing consumer appends each booked payment to. The audit page shows the claim, the
// outcome and the refusal. The steps run in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Proc, browser, eventually, one, open, run, screenshot, settings, startWeb,
} from '../harness.js';

const s = settings();
const payments = `${s.prefix}payments`;
const dlq = `${s.prefix}payments_dlq`;
const billing = `${s.prefix}billing`;
const POISON_ID = 9000;
const booked = join(s.artifacts, 'logs', `${s.prefix}booked.jsonl`);

let web;
let server;
let base;
let chrome;
let page;
let poison; // the produced poison payment: topic, partition, offset
let republishId;

/** A process of the example with `vars` added to its environment. */
function procWith(vars, name, args) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return new Proc(s, name, args); // spawn copies the environment at once
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }
}

/** The booked lines of the poison payment. */
function bookedPoison() {
  if (!existsSync(booked)) return [];
  return readFileSync(booked, 'utf8').trim().split('\n').filter(Boolean)
    .map((line) => JSON.parse(line)).filter((b) => b.payment === POISON_ID);
}

/** Saves a screenshot of `tab` in the artifacts and, with DOCS_SCREENSHOTS set, one viewport
 * there (what docs/web holds). */
async function shot(name, tab = page) {
  await screenshot(tab, s, `dead-letters-${name}`);
  if (process.env.DOCS_SCREENSHOTS) {
    mkdirSync(process.env.DOCS_SCREENSHOTS, { recursive: true });
    await tab.screenshot({ path: join(process.env.DOCS_SCREENSHOTS, `dead-letters-${name}.png`) });
  }
}

before(async () => {
  await run(s, ['topics', 'migrate']);
  let answering;
  ({ web, base, answering } = await startWeb(s, 'dl-web'));
  server = procWith({ EXAMPLE_WEB_BOOKED: booked, EXAMPLE_WEB_FIXED: '0' }, 'dl-server-unfixed', ['server']);
  chrome = await browser(s);
  page = chrome.page;
  await answering();
});

after(async () => {
  await chrome?.close();
  await server?.stop('SIGKILL', 10_000).catch(() => {});
  await web?.stop('SIGTERM', 10_000).catch(() => web.stop('SIGKILL'));
});

test('a poison payment fails every attempt and lands in the dead-letter topic', async () => {
  const out = await run(s, ['produce', '--topic', 'payments', '--messages', '1',
    '--first-id', String(POISON_ID), '--poison']);
  poison = JSON.parse(out.trim());
  assert.equal(poison.topic, payments);
  await eventually('one dead letter in the payments DLQ', async () => {
    await open(page, base, '/dead-letters', 'dead-letters');
    const queue = await one(page, `section[data-testid="dead-letter-queue"][data-topic="${dlq}"]`).check();
    assert.equal(await one(queue, '[data-testid="dead-letter-count"]').int(), 1);
  }, 60_000);
  await shot('list');
  assert.deepEqual(bookedPoison(), [], 'the unfixed consumer booked nothing of it');
});

test('the explorer decodes where it came from and why', async () => {
  await open(page, base, `/dead-letters/${dlq}/0`, 'dead-letter-partition');
  const row = await one(page, '[data-testid="dead-letter-row"]').check();
  assert.equal(await row.getAttribute('data-offset'), '0');
  republishId = await row.getAttribute('data-republish-id');
  assert.match(republishId, new RegExp(`^${dlq}/0/0@\\d+$`));
  assert.equal(await one(row, '[data-testid="source"]').text(),
    `${payments} / ${poison.partition} / ${poison.offset}`);
  assert.equal(await one(row, '[data-testid="consumer-group"]').text(), billing);
  assert.equal(await one(row, '[data-testid="attempts"]').int(), 3);
  assert.match(await one(row, '[data-testid="error"]').text(), /cannot be booked/);
  assert.match(await one(row, '[data-testid="payload"]').text(), /"poison":\s*true/);
  assert.equal(await one(row, '[data-testid="republish-to"]').getAttribute('value'), payments);
  await shot('explorer');
});

test('republish twice: the first lands, the second is refused and says who did it', async () => {
  // The fix is being deployed: the old server stops first.
  const stopped = await server.stop('SIGTERM');
  assert.equal(stopped.code, 0, 'the unfixed server stopped cleanly');
  const path = `/dead-letters/${dlq}/0`;
  const second = await chrome.page.context().newPage();
  await open(second, base, path, 'dead-letter-partition');
  await open(page, base, path, 'dead-letter-partition');

  await one(page, '[data-testid="republish"]').check().then((b) => b.click());
  await page.waitForSelector('[data-testid="republish-result"]');
  const result = await one(page, '[data-testid="republish-result"]').check();
  assert.equal(await result.getAttribute('data-outcome'), 'done', await page.locator('main').innerText());
  assert.equal(await result.getAttribute('data-republish-id'), republishId);
  assert.match(await one(page, '[data-testid="landed"]').text(), new RegExp(`^${payments}/${poison.partition}/\\d+$`));
  await shot('republished');

  await one(second, '[data-testid="republish"]').check().then((b) => b.click());
  await second.waitForSelector('[data-testid="republish-result"]');
  const refused = await one(second, '[data-testid="republish-result"]').check();
  assert.equal(await refused.getAttribute('data-outcome'), 'refused');
  assert.equal(await one(second, '[data-testid="republished-by"]').text(), 'anonymous');
  await shot('refused', second);
  await second.close();

  await open(page, base, path, 'dead-letter-partition');
  assert.equal(await page.locator('[data-testid="republish"]').count(), 0, 'no button once republished');
  assert.equal(await one(page, '[data-testid="republish-state"]').getAttribute('data-state'), 'done');
});

test('the fixed server books the republished payment exactly once', async () => {
  server = procWith({ EXAMPLE_WEB_BOOKED: booked, EXAMPLE_WEB_FIXED: '1' }, 'dl-server-fixed', ['server']);
  const lines = await eventually('the poison payment booked', async () => {
    const found = bookedPoison();
    assert.equal(found.length, 1, JSON.stringify(found));
    return found;
  }, 90_000);
  assert.equal(lines[0].republish_id, republishId);
  assert.equal(lines[0].topic, payments);
  assert.equal(lines[0].partition, poison.partition);
  // Committed past it, so no later start books it again; and nothing else was dead-lettered.
  await eventually('billing committed the republished payment', async () => {
    await open(page, base, `/groups/${billing}`, 'group');
    const row = await one(page, `tr[data-testid="group-partition-row"][data-topic="${payments}"][data-partition="${poison.partition}"]`).check();
    assert.equal(await one(row, '[data-testid="committed"]').int(), lines[0].offset + 1);
  }, 60_000);
  const stopped = await server.stop('SIGTERM');
  assert.equal(stopped.code, 0);
  assert.equal(bookedPoison().length, 1, 'booked exactly once');
  await open(page, base, '/dead-letters', 'dead-letters');
  const queue = await one(page, `section[data-testid="dead-letter-queue"][data-topic="${dlq}"]`).check();
  assert.equal(await one(queue, '[data-testid="dead-letter-count"]').int(), 1, 'no new dead letter');
});

test('the audit page shows the claim, the outcome and the refusal', async () => {
  await open(page, base, '/audit', 'audit');
  const rows = page.locator(`tr[data-testid="audit-row"][data-action="republish"][data-id="${republishId}"]`);
  const outcomes = [];
  for (const row of await rows.all()) outcomes.push(await row.getAttribute('data-outcome'));
  assert.deepEqual(outcomes.sort(), ['done', 'refused: republished already', 'started'], outcomes.join(', '));
  const done = await one(page, `tr[data-testid="audit-row"][data-id="${republishId}"][data-outcome="done"]`).check();
  assert.equal(await one(done, '[data-testid="audit-who"]').text(), 'anonymous');
  assert.equal(await one(done, '[data-testid="audit-subject"]').text(), `${dlq}/0/0`);
  assert.match(await one(done, '[data-testid="audit-from"]').text(), /^127\.0\.0\.1/);
  await shot('audit');
});
