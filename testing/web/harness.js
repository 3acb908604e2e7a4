// The browser tests' harness: the example app's processes (servers, `web`, `produce`) against
// the Kafka in FERRAFKA_TEST_KAFKA, headless Chromium (the system's, never a download) driven by
// playwright-core, and strict readers of the contract's `data-testid` selectors.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const targetDir = process.env.CARGO_TARGET_DIR ?? '/var/tmp/ferrafka-target';

/** Everything a run needs, from the environment; throws (never skips) when something is missing. */
export function settings() {
  const kafka = process.env.FERRAFKA_TEST_KAFKA;
  if (!kafka) {
    throw new Error('FERRAFKA_TEST_KAFKA is not set: give the bootstrap of a Kafka cluster '
      + '(scripts/test starts one; the dev cluster\'s is in /var/tmp/dev-kafka.bootstrap)');
  }
  const bin = process.env.EXAMPLE_WEB_BIN ?? join(targetDir, 'debug', 'example-web');
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it with \`cargo build -p example-web\` `
      + '(or set EXAMPLE_WEB_BIN)');
  }
  const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} does not exist: install Debian's chromium (.ci/run does)`);
  }
  const brokers = Number(process.env.FERRAFKA_TEST_KAFKA_BROKERS ?? 3);
  const artifacts = process.env.WEB_ARTIFACTS ?? join(targetDir, 'web-screenshots');
  mkdirSync(join(artifacts, 'logs'), { recursive: true });
  const prefix = `webtest-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}-`;
  return { kafka, bin, chromiumPath, brokers, artifacts, prefix };
}

/** The environment of the example's processes: one cluster, this run's names. */
function childEnv(s) {
  return {
    ...process.env,
    FERRAFKA_KAFKA_BOOTSTRAP_SERVERS: s.kafka,
    EXAMPLE_WEB_PREFIX: s.prefix,
    EXAMPLE_WEB_REPLICATION: String(Math.min(s.brokers, 3)),
    RUST_LOG: process.env.RUST_LOG ?? 'info,librdkafka=warn',
    NO_COLOR: '1',
  };
}

/** Runs the example to completion; its stdout, or an error with its stderr. */
export async function run(s, args) {
  try {
    const { stdout } = await promisify(execFile)(s.bin, args, {
      env: childEnv(s), timeout: 60_000, maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (e) {
    throw new Error(`example-web ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Produces `messages` of `topic` (orders|payments) from `firstId`; the deliveries, as printed. */
export async function produce(s, topic, messages, firstId = 0, declinedEvery = 0) {
  const out = await run(s, ['produce', '--topic', topic, '--messages', String(messages),
    '--first-id', String(firstId), '--declined-every', String(declinedEvery)]);
  const lines = out.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(lines.length, messages, `produce printed ${lines.length} deliveries`);
  return lines;
}

/** A long-running process of the example, its output in the artifacts' logs. */
export class Proc {
  constructor(s, name, args) {
    this.name = name;
    const log = openSync(join(s.artifacts, 'logs', `${name}.log`), 'w');
    this.child = spawn(s.bin, args, { env: childEnv(s), stdio: ['ignore', log, log] });
    this.pid = this.child.pid;
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    this.exited = false;
    this.exit.then(() => { this.exited = true; });
  }

  /** Sends `signal`; with `wait`, resolves with the exit once it happened within `timeoutMs`. */
  async stop(signal = 'SIGTERM', timeoutMs = 60_000) {
    if (this.exited) return this.exit;
    this.child.kill(signal);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit ${timeoutMs} ms after ${signal}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A free loopback port (released just before the web process binds it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs `check` until it stops throwing; rethrows its last error after `timeoutMs`. */
export async function eventually(what, check, timeoutMs = 30_000, intervalMs = 500) {
  const started = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() - started > timeoutMs) {
        throw new Error(`${what}: still failing after ${timeoutMs} ms: ${e.message}`, { cause: e });
      }
    }
    await new Promise((resolve) => { setTimeout(resolve, intervalMs); });
  }
}

/** Headless Chromium with a fresh profile; `close()` removes the profile. */
export async function browser(s) {
  const profile = mkdtempSync(join(tmpdir(), 'ferrafka-web-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: s.chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(5_000);
  const page = context.pages()[0] ?? await context.newPage();
  return {
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens `path` and checks it is the page `name` (`main[data-testid=page][data-page=name]`). */
export async function open(page, base, path, name) {
  const response = await page.goto(base + path);
  assert.equal(response.status(), 200, `GET ${path}`);
  assert.equal(await one(page, 'main[data-testid="page"]').getAttribute('data-page'), name,
    `${path} is the ${name} page`);
}

/** The one element `selector` matches (fails when there is none or several). */
export function one(scope, selector) {
  const locator = scope.locator(selector);
  return {
    async check() {
      const n = await locator.count();
      assert.equal(n, 1, `exactly one ${selector} (found ${n})`);
      return locator;
    },
    async getAttribute(name) {
      const value = await (await this.check()).getAttribute(name);
      assert.notEqual(value, null, `${selector} has ${name}`);
      return value;
    },
    async text() {
      return ((await (await this.check()).textContent()) ?? '').trim();
    },
    async int() {
      const text = await this.text();
      assert.match(text, /^-?\d+$/, `${selector} holds an integer`);
      return Number(text);
    },
  };
}

/** A number shown with optional decimals and unit (`12.5`, `0/s`): its value. */
export async function number(scope, selector) {
  const text = await one(scope, selector).text();
  const match = /^(-?\d+(?:[.,]\d+)?)/.exec(text.replace(/,(?=\d{3})/g, ''));
  assert.ok(match, `${selector} shows a number, not ${JSON.stringify(text)}`);
  return Number(match[1]);
}

/** Saves a full-page screenshot `name`.png in the artifacts. */
export async function screenshot(page, s, name) {
  await page.screenshot({ path: join(s.artifacts, `${name}.png`), fullPage: true });
}

/**
 * Starts the example's `web` process `name` on a free loopback port: the process, its base URL,
 * and `answering()`, which waits (30 s at most) until its dashboard answers 200.
 */
export async function startWeb(s, name) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const web = new Proc(s, name, ['web', '--bind', `127.0.0.1:${port}`]);
  const answering = () => eventually('the web process answers', async () => {
    assert.equal((await fetch(`${base}/`)).status, 200);
  }, 30_000);
  return { web, base, answering };
}
