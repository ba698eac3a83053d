// `auth: oidc` in a real browser: input {base, user, companies, screenshots}. Opening the portal
// signed out goes to the OpenID Connect provider and back (the test's provider signs the queued
// user in without a form), and lands on the user's Companies; then Sign out ends the session.
import { input, context, main, step, ok, check, checkPage } from './lib.mjs';

const t = input();
main(async (browser) => {
  const page = await (await context(browser)).newPage();
  step('sign in through the provider');
  const seen = [];
  page.on('request', (r) => { if (r.isNavigationRequest()) seen.push(r.url()); });
  await page.goto(`${t.base}/portal/`);
  await page.waitForURL((u) => u.pathname === t.companies);
  check(seen.some((u) => u.includes('/authorize?') && u.includes('code_challenge_method=S256')),
    `the browser went to the provider with PKCE: ${seen.join(' → ')}`);
  check(seen.some((u) => u.startsWith(`${t.base}/portal/oidc/callback?`)),
    `and came back to the callback: ${seen.join(' → ')}`);
  const user = (await page.locator('#user').textContent()).trim();
  check(user === t.user, `signed in as ${user}, not ${t.user}`);
  check(await page.getByRole('heading', { name: 'Companies', level: 1 }).isVisible(), 'Companies');
  ok();
  await checkPage(page, 'oidc-companies', { screenshots: t.screenshots });
  step('sign out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Signed out of the portal', level: 1 }).waitFor();
  ok();
  step('signed out for good');
  const r = await page.request.get(`${t.base}${t.companies}`, { maxRedirects: 0 });
  check(r.status() === 303 && r.headers()['location'] === '/portal/sign-in',
    `the companies page after sign-out: ${r.status()} ${r.headers()['location']}`);
  ok();
});
