// What the browser tests share: the project's paths, a real server on a
// port the system gives (seeded with the demo), Debian's chromium, and a
// signed-in page. No test here: each *.test.mjs uses these.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(root, 'target/debug');
export const shots = join(root, 'target/screens');
mkdirSync(shots, { recursive: true });

/** A fresh working folder for one test file. */
export const workFolder = (name) => mkdtempSync(join(tmpdir(), `bilan-${name}-`));

/** Resolves with the address the server prints once it listens (at most 30 s). */
function listeningAddress(child) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`le serveur n'a pas annoncé son adresse en 30 s : ${out}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/à l'écoute sur (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`le serveur s'est arrêté (code ${code}) : ${out}`)));
  });
}

/** Seeds the demo (`demoArgs`, e.g. ['--vide']) in `dir`, serves it on 127.0.0.1:0; { server, url }. */
export async function startServer(dir, demoArgs = []) {
  execFileSync(join(bin, 'bilan-server'), ['--data-dir', dir, 'demo', ...demoArgs]);
  const server = spawn(join(bin, 'bilan-server'), ['--data-dir', dir, '--listen', '127.0.0.1:0', 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await listeningAddress(server);
  assert.ok((await fetch(`${url}/healthz`)).ok, 'the server answers at the address it printed');
  return { server, url };
}

/** Debian's chromium, headless (never a downloaded browser). */
export const launchBrowser = () =>
  chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });

/** A page signed in as `user` through the login form, downloads accepted. */
export async function login(browser, url, user, viewport = { width: 1200, height: 900 }) {
  const context = await browser.newContext({ acceptDownloads: true, viewport });
  const page = await context.newPage();
  await page.goto(`${url}/connexion`);
  await page.fill('#username', user);
  await page.fill('#password', 'bilan-demo');
  await Promise.all([page.waitForURL(`${url}/`), page.click('button[type=submit]')]);
  return page;
}
