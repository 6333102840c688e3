// The dashboard's page in real headless Chromium (run by tests/dashboard.rs, which owns the
// store, the server and the experiment that finishes while the page is open):
//
//   node tests/browser/dashboard.mjs URL RUN CELLS_JSON [SHOTS_DIR]
//
// It loads each view and checks what it must show, prints READY on the overview, then waits
// (for an event, not a time) until a run newer than every run shown appears without a reload.
// Any console error, page error or failed request fails it. With SHOTS_DIR, it saves a
// 1280x900 screenshot of each view there.
import { createRequire } from 'node:module';
const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);

const [url, run, cellsJson, shots] = process.argv.slice(2);
const cells = JSON.parse(cellsJson);
const errors = [];
const browser = await chromium.launch({
  executablePath: process.env.CELLC_CHROMIUM || '/usr/bin/chromium',
  args: ['--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => errors.push(`page error: ${e}`));
page.on('requestfailed', (r) => {
  // The event stream is cut when the page navigates away; that is not a failure.
  if (!r.url().endsWith('/events')) errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
});
let loads = 0;
page.on('load', () => loads++);
const shot = async (name) => { if (shots) await page.screenshot({ path: `${shots}/${name}.png` }); };
const step = (what) => console.error(`browser: ${what}`);
const wait = { timeout: 120000 };

// The leaderboard shows the search's cells.
await page.goto(`${url}/experiments/search`);
await page.locator('#leaderboard tbody tr').first().waitFor(wait);
const board = await page.locator('#leaderboard').innerText();
for (const c of cells) if (!board.includes(c)) throw new Error(`the leaderboard lacks ${c}: ${board}`);
step(`leaderboard shows ${cells.join(', ')}`);
await shot('search');

// A cell's page, reached by a link (no reload): its source and derivative.
const before = loads;
await page.locator('#leaderboard tbody tr a[href*="/cells/"]').first().click();
await page.locator('#cell-grad').waitFor(wait);
if (!(await page.locator('#cell-grad').innerText()).includes('grad ')) throw new Error('no derivative shown');
if (loads !== before) throw new Error('following a link reloaded the page');
step('a cell page shows its source and derivative');
await shot('cell');

// A run's learning curves.
await page.goto(`${url}/runs/${run}`);
await page.locator('#curves canvas').first().waitFor(wait);
step(`run ${run} shows its curves`);
await shot('run');

// The overview; then a run finishes while the page is open.
await page.goto(`${url}/`);
await page.locator('#recent-runs tbody tr').first().waitFor(wait);
await page.locator('#workers').waitFor(wait);
await shot('overview');
const runIds = async () => (await page.locator('#recent-runs tbody tr a[href^="/runs/"]').evaluateAll(
  (links) => links.map((a) => Number(a.getAttribute('href').split('/').pop()))));
const newest = Math.max(...(await runIds()));
const loaded = loads;
console.log('READY');
await page.waitForFunction((newest) => [...document.querySelectorAll('#recent-runs tbody tr a[href^="/runs/"]')]
  .some((a) => Number(a.getAttribute('href').split('/').pop()) > newest), newest, { timeout: 600000, polling: 'raf' });
if (loads !== loaded) throw new Error('the page reloaded to show the new run');
step(`a run newer than ${newest} appeared without a reload`);

if (errors.length) throw new Error(errors.join('\n'));
await browser.close();
console.log('OK');
