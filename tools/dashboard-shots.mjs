// The README's screenshots of the dashboard: one 1280x900 PNG per view of a running server.
//
//   PLAYWRIGHT_CORE=$(tools/browser-env.sh) node tools/dashboard-shots.mjs URL OUT_DIR
//
// Takes the first search, study and comparison of the store, the best cell of the search and
// its runs (overlaid), as the page shows them.
import { createRequire } from 'node:module';
const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);

const [url, out] = process.argv.slice(2);
const get = async (path) => (await fetch(url + path)).json();
const overview = await get('/api/overview');
const of = (kind) => overview.experiments.find((e) => e.kind === kind)?.name;
const search = await get(`/api/experiments/${of('search')}`);
const best = search.leaderboard.find((e) => e.parent_id != null) || search.leaderboard[0];
const cell = await get(`/api/experiments/${of('search')}/cells/${best.id}`);
const runs = cell.runs.filter((r) => r.task === cell.runs[cell.runs.length - 1].task).map((r) => r.run);
const gru = (await get(`/api/experiments/${of('search')}/cells/1`)).runs.find((r) => r.task === cell.runs[cell.runs.length - 1].task);
const views = {
  overview: ['/', '#recent-runs tbody tr'],
  search: [`/experiments/${of('search')}`, '#leaderboard tbody tr'],
  cell: [`/experiments/${of('search')}/cells/${best.id}`, '#cell-grad'],
  run: [`/runs/${runs[0]}?with=${[...runs.slice(1), gru?.run].filter(Boolean).join(',')}`, '#curves canvas'],
  study: [`/experiments/${of('study')}`, '#study-table tbody tr'],
  comparison: [`/experiments/${of('compare')}`, '#differences'],
};
const browser = await chromium.launch({ executablePath: process.env.CELLC_CHROMIUM || '/usr/bin/chromium', args: ['--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
for (const [name, [path, selector]] of Object.entries(views)) {
  await page.goto(url + path);
  await page.locator(selector).first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(300); // let the charts finish their first frame
  await page.screenshot({ path: `${out}/${name}.png` });
  console.error(`${name}: ${path}`);
}
await browser.close();
