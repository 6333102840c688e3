// Times the dashboard's first views in headless Chromium (bench/dashboard.sh runs it):
//
//   node bench/dashboard_page.mjs URL REPEATS
//
// For each view, from navigation start to its table's first row on screen (the page has
// fetched and drawn its JSON): the overview (`#experiments`) and the search (`#leaderboard`).
// Prints one JSON line: per view, every repeat's milliseconds.
import { createRequire } from 'node:module';
const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);

const [url, repeats] = [process.argv[2], Number(process.argv[3] || 5)];
const browser = await chromium.launch({ executablePath: process.env.CELLC_CHROMIUM || '/usr/bin/chromium', args: ['--disable-gpu'] });
const views = { overview: ['/', '#experiments tbody tr'], search: ['/experiments/search', '#leaderboard tbody tr'] };
const out = {};
for (let r = 0; r < repeats; r++) {
  for (const [name, [path, selector]] of Object.entries(views)) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const t0 = Date.now();
    await page.goto(url + path);
    await page.locator(selector).first().waitFor({ timeout: 60000 });
    (out[name] ??= []).push(Date.now() - t0);
    await page.close();
  }
}
console.log(JSON.stringify(out));
await browser.close();
