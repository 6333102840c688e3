// Keeps a dashboard page open in headless Chromium until killed (bench/dashboard.sh's "with a
// dashboard open" condition): the live overview, refetched on every change event.
//
//   node bench/dashboard_watch.mjs URL
import { createRequire } from 'node:module';
const { chromium } = createRequire(import.meta.url)(process.env.PLAYWRIGHT_CORE);

const browser = await chromium.launch({ executablePath: process.env.CELLC_CHROMIUM || '/usr/bin/chromium', args: ['--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(process.argv[2] + '/');
await page.locator('#experiments, #experiments-empty').first().waitFor({ timeout: 60000 });
console.log('open');
const stop = async () => { await browser.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
