// One portal page's screenshot, as one person (`make demo` leaves alice's Companies page):
// input {base, user, path, file}; signs in on the demo page as `user`, opens `<base>/portal/<path>`
// and saves a full-page PNG to `file`.
import { input, context, main, step, ok, check } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const t = input();
main(async (browser) => {
  step(`sign in as ${t.user}`);
  const page = await (await context(browser)).newPage();
  await page.goto(`${t.base}/portal/sign-in`);
  await page.locator('#email').fill(t.user);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => !u.pathname.endsWith('/sign-in'));
  ok();
  step(`screenshot of ${t.path}`);
  await page.goto(`${t.base}/portal/${t.path}`);
  check(page.url().endsWith(t.path), `landed on ${page.url()}`);
  mkdirSync(dirname(t.file), { recursive: true });
  await page.screenshot({ path: t.file, fullPage: true });
  ok(`${t.file}`);
});
