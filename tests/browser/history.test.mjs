// Browser tests of the BSI over time, on the living demo (five years of
// history, budgets, an assignment plan): the manager plans visits on the
// planning page, opens a complex's history, downloads its BSI report as a
// PDF (text read back with pdftotext, first page rendered with pdftoppm),
// and moves a work into a year over its envelope. Screenshots go to
// target/screens/web-1*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { shots, workFolder, startServer, launchBrowser, login as signIn } from './harness.mjs';

const work = workFolder('history');
let url, server, browser;

before(async () => {
  ({ server, url } = await startServer(join(work, 'server')));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.kill('SIGKILL');
});

const login = (user) => signIn(browser, url, user, { width: 1280, height: 900 });

/** The number in a count cell of the per-inspector table, by inspector and column. */
async function inspectorCount(page, name, column) {
  const row = page.locator('#par-inspecteur tbody tr', { has: page.locator('td', { hasText: name }) });
  return Number((await row.locator('td').nth(column).textContent()).trim());
}

test('the manager assigns two complexes on the planning page and sees them planned and counted', async () => {
  const page = await login('responsable');
  await page.goto(`${url}/planification`);
  assert.match(await page.textContent('h1'), /Planification du cycle de 5 ans/);
  // The demo's plan: complexes overdue or due are planned; the rest are not.
  const plannedBefore = await inspectorCount(page, 'Marc Gagnon', 6);
  await page.screenshot({ path: join(shots, 'web-09-planification.png'), fullPage: true });
  await page.selectOption('select[name=inspecteur] >> nth=0', 'aucun');
  await Promise.all([page.waitForURL(/inspecteur=aucun/), page.click('form[action="/planification"][method=get] button')]);
  const rows = page.locator('#ensembles tbody tr');
  assert.ok((await rows.count()) >= 2, 'complexes planned for nobody');
  const codes = [await rows.nth(0).getAttribute('data-code'), await rows.nth(1).getAttribute('data-code')];
  for (const code of codes) await page.getByLabel(`Choisir ${code}`, { exact: true }).check();
  const marc = await page.locator('#inspecteur option', { hasText: 'Marc Gagnon' }).getAttribute('value');
  await page.selectOption('#inspecteur', marc);
  await page.fill('#mois', '2027-06');
  await Promise.all([page.waitForURL(`${url}/planification`), page.click('#assigner')]);
  for (const code of codes) {
    const row = page.locator(`#ensembles tbody tr[data-code="${code}"]`);
    assert.match(await row.textContent(), /Marc Gagnon/);
    assert.match(await row.textContent(), /juin 2027/);
  }
  assert.equal(await inspectorCount(page, 'Marc Gagnon', 6), plannedBefore + 2);
  await page.screenshot({ path: join(shots, 'web-10-planification-assignee.png'), fullPage: true });
  // The page's downloads: a workbook (its cells are read back with calamine
  // in tests/tests/review_pages.rs) and a CSV with Marc's two new visits.
  const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('a[href^="/planification.xlsx"]')]);
  assert.match(xlsx.suggestedFilename(), /\.xlsx$/);
  const book = join(work, 'planification.xlsx');
  await xlsx.saveAs(book);
  assert.equal(readFileSync(book).subarray(0, 2).toString('latin1'), 'PK');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('a[href^="/planification.csv"]')]);
  const csvPath = join(work, 'planification.csv');
  await csv.saveAs(csvPath);
  const lines = readFileSync(csvPath, 'utf8').split('\n').filter((l) => l.includes('Marc Gagnon') && l.includes('2027-06'));
  assert.equal(lines.length, 2, 'the two visits planned in June 2027');
});

test("the manager opens a complex's history and downloads its BSI report as a PDF that reads back and renders", async () => {
  const page = await login('responsable');
  await page.goto(`${url}/planification?etat=a_jour`);
  // Up-to-date complexes have an approved BSI; the demo gives some of them
  // the previous cycle's too: their history has a trend.
  const links = await page.locator('#ensembles tbody a[href^="/ensembles/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  let found = false;
  for (const href of links) {
    await page.goto(`${url}${href}`);
    if ((await page.locator('#historique tbody tr', { hasText: 'Approuvée' }).count()) >= 2) {
      found = true;
      break;
    }
  }
  assert.ok(found, 'a complex with two approved BSIs');
  assert.match(await page.textContent('#etat'), /État : [A-E]/);
  assert.equal(await page.locator('svg#tendance polyline').count(), 1);
  const name = (await page.textContent('h1')).trim();
  await page.screenshot({ path: join(shots, 'web-11-ensemble.png'), fullPage: true });
  const approved = page.locator('#historique tbody tr', { hasText: 'Approuvée' }).locator('a[href^="/inspections/"]').first();
  await Promise.all([page.waitForURL(/\/inspections\/[^/]+$/), approved.click()]);
  await Promise.all([page.waitForURL(/\/rapport$/), page.click('a[href$="/rapport"]')]);
  await page.screenshot({ path: join(shots, 'web-12-rapport.png'), fullPage: true });
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('a[href$="/rapport.pdf"]')]);
  assert.match(dl.suggestedFilename(), /\.pdf$/);
  const pdf = join(work, 'rapport.pdf');
  await dl.saveAs(pdf);
  assert.equal(readFileSync(pdf).subarray(0, 5).toString('latin1'), '%PDF-');
  const text = execFileSync('pdftotext', ['-layout', pdf, '-']).toString();
  assert.match(text, /Rapport BSI/);
  assert.ok(text.includes(name.split(' — ')[0].replace(/^Ensemble\s*/, '').trim().slice(0, 12)), `the complex's name in the PDF: ${text.slice(0, 400)}`);
  assert.match(text, /Approuvé par/);
  // The demo's roof photo is in the report.
  const images = execFileSync('pdfimages', ['-list', pdf]).toString().trim().split('\n').slice(2);
  assert.ok(images.length >= 1, 'a photo in the PDF');
  execFileSync('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', '-singlefile', pdf, join(shots, 'web-13-rapport-pdf-page1')]);
  assert.ok(readFileSync(join(shots, 'web-13-rapport-pdf-page1.png')).length > 5_000, 'the first page renders');
});

test('a work moved into a year over its envelope shows in that year, in the totals and marked over budget', async () => {
  const page = await login('responsable');
  // An envelope of 1 $ for every office, eight years from now (no work due
  // then yet).
  const year = new Date().getFullYear() + 8;
  await page.goto(`${url}/parametres`);
  const csv = await page.inputValue('#enveloppes textarea[name=csv]');
  const codes = [...new Set(csv.trim().split('\n').slice(1).map((l) => l.split(';')[0]))];
  await page.fill('#enveloppes textarea[name=csv]', csv.trim() + '\n' + codes.map((c) => `${c};${year};1`).join('\n'));
  await page.click('#enveloppes button');
  await page.waitForSelector('p[role=status]');

  await page.goto(`${url}/plan`);
  assert.equal(await page.locator(`#totaux thead th`, { hasText: String(year) }).count(), 0, 'nothing planned that year yet');
  const row = page.locator('#travaux tbody tr').first();
  const office = (await row.locator('td').nth(0).textContent()).trim();
  const work = (await row.locator('td').nth(3).textContent()).trim();
  const cost = (await row.locator('td').nth(5).textContent()).trim();
  await row.locator('input[name=annee]').fill(String(year));
  await Promise.all([page.waitForURL(`${url}/plan`), row.locator('button').click()]);
  const moved = page.locator('#travaux tbody tr', { hasText: work }).filter({ hasText: 'déplacé par le CS' });
  assert.equal(await moved.count(), 1, 'the work shows as moved');
  const headers = await page.locator('#totaux thead th').allTextContents();
  const column = headers.findIndex((h) => h.trim() === String(year));
  assert.ok(column > 0, `a column for ${year}: ${headers}`);
  const cell = page.locator('#totaux tbody tr', { has: page.locator('td', { hasText: office }) }).locator('td').nth(column);
  assert.ok((await cell.textContent()).startsWith(cost), `${office} ${year}: ${await cell.textContent()} starts with ${cost}`);
  assert.match(await cell.getAttribute('class'), /over/);
  assert.match(await cell.textContent(), /dépassement/);
  await page.screenshot({ path: join(shots, 'web-14-plan-depassement.png'), fullPage: true });
});
