// The invitation link from the mail, opened in a real browser (tests/rules_invites.rs): prints
// the page as the invitee sees it (`value page {text, html}`), keeps its screenshot, clicks
// Accept and waits for the confirmation. Input: {link, screenshots}.
import { input, context, main, step, ok, check } from './lib.mjs';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

const t = input();
main(async (browser) => {
  mkdirSync(t.screenshots, { recursive: true });
  const page = await (await context(browser)).newPage();
  step('the invitation page');
  await page.goto(t.link);
  const text = await page.locator('body').innerText();
  console.log(`value page ${JSON.stringify({ text, html: await page.content() })}`);
  await page.screenshot({ path: join(t.screenshots, 'invite-page.png'), fullPage: true });
  ok();
  step('Accept');
  await page.locator('#accept').click();
  await page.getByText('you are now an administrator').waitFor({ timeout: 10000 });
  check((await page.locator('body').innerText()).includes('you are now an administrator'), 'confirmed');
  await page.screenshot({ path: join(t.screenshots, 'invite-accepted.png'), fullPage: true });
  ok();
});
