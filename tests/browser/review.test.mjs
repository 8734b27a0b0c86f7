// Browser tests of the CS review pages: Debian's chromium driven by
// playwright-core against a real server seeded with the demo, with an
// inspection synced by a real device (the bilan-device CLI). Screenshots of
// every page go to target/screens/web-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, shots, workFolder, startServer, launchBrowser, login as signIn } from './harness.mjs';

const work = workFolder('browser');
let url;
let server, browser;

const device = (dir, ...args) =>
  execFileSync(join(bin, 'bilan-device'), ['--data', join(work, dir), ...args], {
    env: { ...process.env, BILAN_PASSWORD: 'bilan-demo' },
  }).toString();

let inspection, otherOffice;
before(async () => {
  ({ server, url } = await startServer(join(work, 'server'), ['--vide']));
  // A real device makes and syncs inspections: one in Trois-Rivières with a finding, one elsewhere.
  device('dev', 'login', '--server', url, '--user', 'inspecteur1');
  const complexes = device('dev', 'complexes').trim().split('\n').map((l) => l.split('\t'));
  const tr = complexes.find((c) => c[1].startsWith('OH-TR'));
  const sh = complexes.find((c) => c[1].startsWith('OMH-SH'));
  inspection = device('dev', 'start', tr[0]).trim();
  otherOffice = device('dev', 'start', sh[0]).trim();
  device('dev', 'rate', inspection, 'B3010', 'D');
  const finding = device('dev', 'finding', inspection, '--component', 'B3010', '--title', 'Membrane fissurée', '--severity', 'majeure').trim();
  device('dev', 'recommend', inspection, finding, '--work', 'Réfection de la toiture', '--urgency', 'moins_1_an', '--quantity', '100', '--unit', 'm²', '--unit-cost', '150');
  device('dev', 'sync');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGKILL');
});

const login = (user) => signIn(browser, url, user);

async function downloadFile(page, link) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`a[href^="${link}"]`)]);
  const path = join(work, dl.suggestedFilename());
  await dl.saveAs(path);
  return { name: dl.suggestedFilename(), bytes: readFileSync(path) };
}

async function download(page, link) {
  const { bytes } = await downloadFile(page, link);
  return bytes.toString('utf8').replace(/^\uFEFF/, '').trim().split('\n').map((l) => l.split(';'));
}

// The page's Excel link gives a workbook (a zip archive; its cells are read
// back with calamine in tests/tests/review_pages.rs).
async function downloadWorkbook(page, link) {
  const { name, bytes } = await downloadFile(page, link);
  assert.match(name, /\.xlsx$/);
  assert.equal(bytes.subarray(0, 2).toString('latin1'), 'PK');
}

test('the manager filters, opens a synced inspection, returns it with a comment that reaches the device, and downloads each CSV and workbook', async () => {
  const page = await login('responsable');
  assert.match(await page.textContent('h1'), /Aperçu du territoire/);
  await page.screenshot({ path: join(shots, 'web-01-apercu.png'), fullPage: true });

  await page.goto(`${url}/inspections`);
  await page.selectOption('select[name=status]', 'en_cours');
  await Promise.all([page.waitForURL(/status=en_cours/), page.click('form[action="/inspections"] button')]);
  assert.match(await page.textContent('h1'), /Inspections \(2\)/);
  await page.screenshot({ path: join(shots, 'web-02-inspections.png'), fullPage: true });

  await Promise.all([page.waitForURL(new RegExp(inspection)), page.click(`a[href="/inspections/${inspection}"]`)]);
  assert.ok((await page.content()).includes('Membrane fissurée'));
  await page.screenshot({ path: join(shots, 'web-03-inspection.png'), fullPage: true });
  await page.fill('#comment', 'Ajoutez une photo du toit.');
  await Promise.all([page.waitForURL(new RegExp(`${inspection}$`)), page.click('button[value=retournee]')]);
  assert.ok((await page.content()).includes('Retournée par le CS'));

  device('dev', 'sync');
  const doc = JSON.parse(device('dev', 'show', inspection));
  assert.equal(doc.status, 'retournee');
  assert.equal(doc.review.comments.at(-1).text, 'Ajoutez une photo du toit.');

  await page.goto(`${url}/plan`);
  await page.screenshot({ path: join(shots, 'web-04-plan.png'), fullPage: true });
  await downloadWorkbook(page, '/plan.xlsx');
  const plan = await download(page, '/plan.csv');
  assert.deepEqual(plan[0], ['organisme', 'ensemble', 'annee', 'travaux', 'urgence', 'cout_estime']);
  const total = plan.slice(1).reduce((s, r) => s + Number(r[5].replace(',', '.')), 0);
  assert.equal(total, 15000);

  await page.goto(`${url}/releve`);
  await page.screenshot({ path: join(shots, 'web-05-releve.png'), fullPage: true });
  await downloadWorkbook(page, '/releve.xlsx');
  const releve = await download(page, '/releve.csv');
  assert.equal(releve[0][0], 'organisme');

  await page.goto(`${url}/avancement`);
  await page.screenshot({ path: join(shots, 'web-06-avancement.png'), fullPage: true });
  await downloadWorkbook(page, '/avancement.xlsx');
  const progress = await download(page, '/avancement.csv');
  const complexes = progress.slice(1).reduce((s, r) => s + Number(r[1]), 0);
  const inspected = progress.slice(1).reduce((s, r) => s + Number(r[2]), 0);
  assert.equal(complexes, 20);
  assert.equal(inspected, 2);

  // The condition bands are CS settings: tighten them and the building turns E.
  await page.goto(`${url}/parametres`);
  for (const [name, v] of [['seuil_a', '0,001'], ['seuil_b', '0,002'], ['seuil_c', '0,003'], ['seuil_d', '0,004']]) {
    await page.fill(`input[name=${name}]`, v);
  }
  await page.click('form[action="/parametres"] button');
  await page.waitForSelector('p[role=status]');
  await page.screenshot({ path: join(shots, 'web-08-parametres.png'), fullPage: true });
  await page.goto(`${url}/inspections/${inspection}`);
  assert.equal(await page.locator('p span.cond-E').count(), 1);
});

test("an office reader typing another office's inspection URL is refused", async () => {
  const page = await login('lecteur-tr');
  const own = await page.goto(`${url}/inspections/${inspection}`);
  assert.equal(own.status(), 200);
  assert.ok(!(await page.content()).includes('/revision'));
  const other = await page.goto(`${url}/inspections/${otherOffice}`);
  assert.equal(other.status(), 403);
  await page.screenshot({ path: join(shots, 'web-07-lecteur-refuse.png') });
});
