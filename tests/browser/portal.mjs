// The Partner Portal's seed tasks in a real browser, each as the person who does it
// (tests/portal.rs starts the API server, the operator and the portal with `auth: demo`, sets up
// the people and partners, and runs this with them as JSON in argv[2]):
//   alice, partner admin of a licensing partner: Companies, Create Company (the ID proposed
//     from the name, BizApp toggles, a premium app off and disabled with why, a taken ID shown
//     beside the field with nothing lost), Edit (inherited vs own), Template, Settings,
//     Invite Partner Admin (invite, list, revoke);
//   ivan, partner admin of a partner without the branding entitlement: Settings says why not;
//   root, platform admin: Partners (sign up a partner, Edit), Invite Partner Admin to any partner
//     (the chooser), Partner Assignment (move a company);
//   bob, tenant admin: his own company's page, in his partner's brand.
// With `"auth": "proxy"` in the input (the portal behind an authenticating proxy), each person
// is a browser context that sends the proxy's identity header (`X-Forwarded-Email`) on every
// request, and the run covers alice's sign-in, Companies and Create Company (screenshots
// `portal-proxy-<page>.png`).
// Every page: axe-core (no serious or critical violation), every control reachable with Tab
// with a visible focus, and a full-page screenshot `portal-<page>.png` in `screenshots`.
import { input, context, main, step, ok, check, checkPage } from './lib.mjs';

const t = input();
const P = `${t.base}/portal`;
const opts = { screenshots: t.screenshots };
const proxy = t.auth === 'proxy';
const shot = (name) => (proxy ? `proxy-${name}` : name);

async function signIn(browser, email, listed) {
  if (proxy) {
    // Signed in by the proxy: its header on every request, no sign-in page.
    const ctx = await context(browser, { extraHTTPHeaders: { 'X-Forwarded-Email': email } });
    const page = await ctx.newPage();
    await page.goto(`${P}/`);
    check(!page.url().endsWith('/sign-in'), `signed in by the proxy's header, not ${page.url()}`);
    return page;
  }
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await page.goto(`${P}/sign-in`);
  if (listed) {
    await page.getByRole('button', { name: `Sign in as ${email}`, exact: true }).click();
  } else {
    await page.locator('#email').fill(email);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }
  await page.waitForURL((u) => !u.pathname.endsWith('/sign-in'));
  return page;
}

const text = (page, sel) => page.locator(sel).innerText();

main(async (browser) => {
  // ---- alice, partner admin -------------------------------------------------------------
  if (proxy) {
    step('proxy: no identity header');
    const ctx = await context(browser);
    const page = await ctx.newPage();
    const r = await page.goto(`${P}/`);
    check(r.status() === 403, `without the proxy's header: 403, not ${r.status()}`);
    const says = await page.locator('main').innerText();
    check(/proxy/i.test(says), `says to sign in through the proxy: ${says}`);
    await ctx.close();
    ok();
  }
  if (!proxy) step('sign-in page');
  if (!proxy) {
    const ctx = await context(browser);
    const page = await ctx.newPage();
    await page.goto(`${P}/`);
    check(page.url().endsWith('/portal/sign-in'), `signed out, / leads to sign-in, not ${page.url()}`);
    check(await page.getByRole('button', { name: `Sign in as ${t.alice}` }).count() === 1,
      `alice offered on the sign-in page`);
    await checkPage(page, 'sign-in', opts);
    await ctx.close();
  }

  step('alice: Companies');
  let page = await signIn(browser, t.alice, true);
  await page.waitForURL(`**/partners/${t.acme}/companies`);
  const grid = await text(page, '#companies');
  check(grid.includes(t.globex), `globex in the grid:\n${grid}`);
  check(!grid.includes(t.hooli), `another partner's company never shown:\n${grid}`);
  const styled = await page.evaluate(() => getComputedStyle(document.querySelector('header')).display);
  check(styled === 'flex', `portal.css applies under the CSP (header display ${styled})`);
  await checkPage(page, shot('companies'), opts);

  step('alice: Create Company');
  await page.locator('a.button', { hasText: 'Create Company' }).click();
  await page.locator('#name').waitFor();
  const name = `Browser ${t.sfx}`;
  const id = `browser-${t.sfx}`;
  await page.locator('#name').pressSequentially(name);
  check(await page.locator('#id').inputValue() === id, `the ID proposed from the name: ${await page.locator('#id').inputValue()}`);
  check(await page.locator('#app-analytics').isDisabled(), 'a premium app acme is not entitled to is disabled');
  check(!(await page.locator('#app-analytics').isChecked()), '... and off');
  const why = await text(page, '#app-analytics-note');
  check(/plan does not include/.test(why), `... with why: ${why}`);
  check(await page.locator('#app-crm').isEnabled(), 'an entitled premium app can be turned on');
  await page.locator('#app-crm').check();
  await page.locator('#app-chat').uncheck();
  await checkPage(page, shot('create-company'), opts);
  ok();

  step('alice: Create Company with a taken ID');
  await page.locator('#id').fill(t.hooli);
  await page.locator('#submit').click();
  await page.locator('#error-id').waitFor();
  const taken = await text(page, '#error-id');
  check(taken.includes(t.hooli), `the taken ID named beside the field: ${taken}`);
  check(await page.locator('#id').getAttribute('aria-invalid') === 'true', 'the ID field marked invalid');
  check(await page.locator('#name').inputValue() === name, 'the name kept');
  check(await page.locator('#id').inputValue() === t.hooli, 'the ID kept');
  check(await page.locator('#app-crm').isChecked(), 'the CRM toggle kept');
  check(!(await page.locator('#app-chat').isChecked()), 'the Chat toggle kept off');
  check(await page.locator('#admins').inputValue() === t.alice, `the admins kept: ${await page.locator('#admins').inputValue()}`);
  await checkPage(page, shot('create-company-taken-id'), opts);
  await page.locator('#id').fill(id);
  await page.locator('#submit').click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).includes(`Company ${id} created`), await text(page, '#flash'));
  ok('alice: Create Company');
  if (proxy) return;

  step('alice: Edit');
  // The new company's status becomes Ready by itself (the page refreshes while it is pending).
  await page.locator(`tr[data-id="${id}"] .status.ready`).waitFor({ timeout: 30000 });
  await page.getByRole('link', { name: `Edit ${name}` }).click();
  await page.locator('#submit').waitFor();
  check(await text(page, '#submit') === 'Save', 'the form has Save');
  check(await page.locator('#id').getAttribute('readonly') !== null, 'the ID cannot change');
  check(await page.locator('#app-crm-note.own').count() === 1, `CRM is the company's own: ${await text(page, '#app-crm-note')}`);
  check(await page.locator('#app-chat-note.own').count() === 1, 'Chat (off) is its own');
  check(await page.locator('#app-mail-note.inherited').count() === 1, `Mail inherited: ${await text(page, '#app-mail-note')}`);
  check((await text(page, '#app-mail-note')).startsWith('Inherited from the template'), 'says inherited');
  check((await text(page, '#app-crm-note')).startsWith('Set for this company'), 'says own');
  await checkPage(page, 'edit-company', opts);
  await page.locator('#app-chat').check();
  await page.locator('#submit').click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).includes(`Company ${id} saved`), await text(page, '#flash'));
  ok();

  step('alice: Template');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Template' }).click();
  await page.locator('#profiles').waitFor();
  await checkPage(page, 'template', opts);
  await page.locator('#profiles').fill(`wifi.ssid=${t.acme}`);
  await page.locator('#submit').click();
  await page.waitForLoadState();
  await page.locator('#profiles').waitFor();
  check(await page.locator('#profiles').inputValue() === `wifi.ssid=${t.acme}`, 'the template saved');
  ok();

  step('alice: Settings');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await page.locator('#settings-form').waitFor();
  check(await page.locator('#not-licensing').count() === 0, 'acme is licensing');
  check(await page.locator('#logo_url').isEnabled(), 'the form can be edited');
  await checkPage(page, 'settings', opts);
  await page.locator('#logo_url').fill(`https://${t.acme}.example/logo.png`);
  await page.locator('#primary_color').fill('#aa2200');
  await page.locator('#support-email').check();
  await page.locator('#support_email').fill(`help@${t.acme}.example`);
  await page.locator('#save').click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).startsWith('Branding saved'), await text(page, '#flash'));
  await page.reload();
  const bg = await page.evaluate(() => getComputedStyle(document.querySelector('header')).backgroundColor);
  check(bg === 'rgb(170, 34, 0)', `after a refresh the header is in the brand colour, not ${bg}`);
  ok();

  step('alice: Invite Partner Admin');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Invite Partner Admin' }).click();
  await page.locator('#invite-form').waitFor();
  check(await page.locator('#partner').inputValue() === t.acmeName, `the partner preselected: ${await page.locator('#partner').inputValue()}`);
  check(await page.locator('select#partner').count() === 0 && await page.locator('#partner').getAttribute('readonly') !== null,
    'a partner admin cannot choose another partner');
  await page.locator('#email').fill(t.carol);
  await page.locator('#invite').click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).includes('created'), await text(page, '#flash'));
  const row = page.locator('#invites tr', { hasText: t.carol });
  check(await row.count() === 1, `carol's invitation listed:\n${await text(page, 'main')}`);
  await checkPage(page, 'invite-partner-admin', opts);
  await page.getByRole('button', { name: `Revoke the invitation of ${t.carol}` }).click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).includes('revoked'), await text(page, '#flash'));
  check(await page.locator('#invites tr', { hasText: t.carol }).count() === 0, 'the invitation is gone');
  ok();

  step('alice: Invite Partner Admin to another partner, forged');
  // The form has no chooser for her; a request that names another partner anyway is the API
  // server's to refuse.
  await page.evaluate((p) => {
    const i = document.createElement('input');
    i.type = 'hidden'; i.name = 'partner'; i.value = p;
    document.getElementById('invite-form').appendChild(i);
  }, t.initech);
  await page.locator('#email').fill(t.mallory);
  await page.locator('#invite').click();
  await page.locator('#error-email').waitFor();
  const refusal = await text(page, '#error-email');
  check(/forbidden/i.test(refusal) && refusal.includes(`partner-${t.initech}`), `the API server's refusal: ${refusal}`);
  check(await page.locator('#email').inputValue() === t.mallory, 'the e-mail kept');
  ok();
  await page.context().close();

  // ---- ivan, partner admin without the branding entitlement ----------------------------
  step('ivan: Settings, not licensing');
  page = await signIn(browser, t.ivan, true);
  await page.goto(`${P}/partners/${t.initech}/settings`);
  check((await text(page, '#not-licensing')).includes('licensing partners'), 'says why not');
  check(await page.locator('#logo_url').isDisabled() && await page.locator('#save').isDisabled(),
    'the form is disabled');
  await checkPage(page, 'settings-not-licensing', opts);
  await page.context().close();

  // ---- root, platform admin ------------------------------------------------------------
  step('root: home');
  page = await signIn(browser, t.root, false);
  for (let i = 0; i < 50 && !(await page.content()).includes('All partners'); i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  check((await page.content()).includes('All partners'), `the platform admin's home:\n${await text(page, 'main')}`);
  await checkPage(page, 'home-platform-admin', opts);

  step('root: Partners, sign up a partner');
  await page.locator('main').getByRole('link', { name: 'Partners', exact: true }).click();
  await page.waitForURL('**/portal/partners');
  await page.locator('#partner-form').waitFor();
  check(await page.locator(`#partners tr[data-id="${t.acme}"]`).count() === 1, 'acme listed');
  await checkPage(page, 'partners', opts);
  await page.locator('#display_name').fill(`Umbrella ${t.sfx}`);
  await page.locator('#id').fill(t.umbrella);
  await page.locator('#admins').fill(t.una);
  await page.locator('#branding').check();
  await page.locator('#premium-crm').check();
  await page.locator('#sign-up').click();
  await page.locator('#flash').waitFor();
  check((await text(page, '#flash')).includes(`Partner ${t.umbrella} signed up`), await text(page, '#flash'));
  check(await page.locator(`#partners tr[data-id="${t.umbrella}"]`).count() === 1, 'the new partner listed');
  await page.getByRole('link', { name: `Edit ${t.acmeName}` }).click();
  await page.locator('#partner-form').waitFor();
  await checkPage(page, 'partner-edit', opts);
  ok();

  step('root: Invite Partner Admin to any partner');
  await page.goto(`${P}/partners/${t.acme}/invites`);
  check(await page.locator('select#partner').inputValue() === t.acme, 'the page\'s partner preselected in the chooser');
  await checkPage(page, 'invite-partner-admin-platform-admin', opts);
  await page.locator('#partner').selectOption(t.initech);
  await page.locator('#email').fill(t.dave);
  await page.locator('#invite').click();
  await page.locator('#flash').waitFor();
  check(page.url().includes(`/partners/${t.initech}/invites`), `on initech's invitations: ${page.url()}`);
  check(await page.locator('#invites tr', { hasText: t.dave }).count() === 1, `dave's invitation listed in initech's`);
  ok();

  step('root: Partner Assignment');
  await page.goto(`${P}/partner-assignment`);
  await checkPage(page, 'partner-assignment', opts);
  await page.locator('#tenant').fill(id);
  await page.locator('#from').selectOption(t.acme);
  await page.locator('#to').selectOption(t.initech);
  await page.locator('#move').click();
  await page.locator('#flash').waitFor({ timeout: 40000 });
  check((await text(page, '#flash')).includes(`Company ${id} moved`), await text(page, '#flash'));
  check(await page.locator('#assignments tr', { hasText: id }).count() === 1, 'the assignment recorded');
  ok();
  await page.context().close();

  // ---- bob, tenant admin ---------------------------------------------------------------
  step('bob: his company');
  page = await signIn(browser, t.bob, false);
  await page.waitForURL(`**/portal/company/${t.acme}/${t.globex}`);
  const apps = await text(page, '#apps');
  check(apps.includes('Mail'), `his company's apps: ${apps}`);
  // acme is licensing: its support channel reaches its companies (within seconds).
  for (let i = 0; i < 50 && !(await text(page, '#support')).includes(`help@${t.acme}.example`); i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  check((await text(page, '#support')).includes(`help@${t.acme}.example`), `the partner's support channel: ${await text(page, '#support')}`);
  // ... and so does its colour: the header after a refresh.
  const tbg = await page.evaluate(() => getComputedStyle(document.querySelector('header')).backgroundColor);
  check(tbg === 'rgb(170, 34, 0)', `a tenant admin's page wears the partner's brand colour, not ${tbg}`);
  await checkPage(page, 'company', opts);
  await page.context().close();
});
