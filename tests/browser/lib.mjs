// What every browser script of the tests shares: Playwright (playwright-core, installed by
// `make node` into target/node) driving Debian's chromium, axe-core on a page, the keyboard
// check, screenshots, and one line of output per step.
//
// A script reads its input as JSON from argv[2] and exits 0 when every step passed; on the
// first failure it prints `FAIL <step>: <why>` and exits 1. `ok <step>` lines say how far it got.
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const nodeModules = join(root, 'target/node/node_modules');
const require = createRequire(join(nodeModules, 'noop.js'));

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  console.log(`FAIL setup: playwright-core not in ${nodeModules} (\`make node\` installs it): ${e.message}`);
  process.exit(2);
}
const axeSource = readFileSync(join(nodeModules, 'axe-core/axe.min.js'), 'utf8');

export function input() {
  return JSON.parse(process.argv[2] || '{}');
}

// Headless chromium as root needs these (shared/TOOLING.md); Playwright gives it a fresh
// profile of its own.
export async function launch() {
  return playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export async function context(browser, extra = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...extra });
  ctx.setDefaultTimeout(20000);
  ctx.setDefaultNavigationTimeout(30000);
  return ctx;
}

let current = 'start';
export function step(name) {
  current = name;
}
export function ok(what) {
  console.log(`ok ${what ?? current}`);
}
export class Failure extends Error {}
export function check(cond, why) {
  if (!cond) throw new Failure(why);
}

// Runs `body`, reporting its outcome; the exit status says whether every step passed.
export async function main(body) {
  let browser;
  try {
    browser = await launch();
    await body(browser);
    console.log('PASSED');
    await browser.close();
    process.exit(0);
  } catch (e) {
    console.log(`FAIL ${current}: ${e instanceof Failure ? e.message : e.stack || e}`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}

// axe-core's serious and critical violations on the page, as text.
export async function accessibilityProblems(page) {
  // Evaluated by the browser's debugging protocol: the page's CSP does not apply.
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
}

// Every interactive control of the page is reachable with Tab, and shows a visible focus
// indicator: its outline or box-shadow when focused differs from when not, and the outline is
// not `none` or 0 wide. Returns the problems, as text.
export async function keyboardProblems(page) {
  // The controls, and how each looks unfocused.
  const controls = await page.evaluate(() => {
    document.activeElement?.blur();
    const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])';
    const out = [];
    let i = 0;
    for (const el of document.querySelectorAll(sel)) {
      if (el.matches(':disabled')) continue;
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      // The skip link is off-screen until focused: it counts.
      const hidden = s.visibility === 'hidden' || s.display === 'none' ||
        (r.width === 0 && r.height === 0);
      if (hidden) continue;
      el.setAttribute('data-kb', String(i));
      out.push({
        id: i++,
        name: el.outerHTML.slice(0, 120),
        radio: el.type === 'radio' ? el.name : null,
        outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
        shadow: s.boxShadow,
      });
    }
    return out;
  });
  const seen = new Map();
  await page.evaluate(() => window.scrollTo(0, 0));
  // Focus starts at the document: the first Tab reaches the first control.
  await page.evaluate(() => { document.activeElement?.blur(); window.focus(); });
  for (let n = 0; n < controls.length + 10; n++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const s = getComputedStyle(el);
      return {
        id: el.getAttribute('data-kb'),
        outlineStyle: s.outlineStyle,
        outlineWidth: parseFloat(s.outlineWidth) || 0,
        outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
        shadow: s.boxShadow,
      };
    });
    if (!f || f.id === null) continue;
    if (seen.has(f.id)) break;
    seen.set(f.id, f);
  }
  const problems = [];
  const radioGroups = new Set([...seen.keys()]
    .map((id) => controls[Number(id)]?.radio).filter(Boolean));
  for (const c of controls) {
    const f = seen.get(String(c.id));
    if (!f) {
      // One radio of a group is a Tab stop; the arrow keys move within the group.
      if (c.radio && radioGroups.has(c.radio)) continue;
      problems.push(`not reachable with Tab: ${c.name}`);
      continue;
    }
    const outline = f.outlineStyle !== 'none' && f.outlineWidth > 0 && f.outline !== c.outline;
    const shadow = f.shadow !== c.shadow && f.shadow !== 'none';
    if (!outline && !shadow) {
      problems.push(`no visible focus (outline ${f.outline}, box-shadow ${f.shadow}): ${c.name}`);
    }
  }
  return problems;
}

// The page's accessibility and keyboard checks and its screenshot, `<dir>/portal-<name>.png`.
export async function checkPage(page, name, opts) {
  const problems = [];
  for (const p of await accessibilityProblems(page)) problems.push(`axe: ${p}`);
  if (opts.keyboard !== false) {
    for (const p of await keyboardProblems(page)) problems.push(`keyboard: ${p}`);
  }
  mkdirSync(opts.screenshots, { recursive: true });
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(opts.screenshots, `portal-${name}.png`), fullPage: true });
  check(problems.length === 0, `${name} (${page.url()}):\n  ${problems.join('\n  ')}`);
  console.log(`ok page ${name}: axe, keyboard, screenshot`);
}
