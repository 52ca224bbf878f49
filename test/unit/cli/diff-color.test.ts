// diff in colour: on a terminal, created plugins green, deleted red, settings one per line as
// before -> after; NO_COLOR, a pipe or TERM=dumb give the plain text, byte for byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { colorEnabled } from '../../../controller/cli/color.ts';
import { renderPlans } from '../../../controller/cli/render.ts';
import type { PluginPlan } from '../../../controller/reconcile/plan.ts';

const GREEN = '\u001b[32m';
const RED = '\u001b[31m';

const plans = [
  {
    key: 'new',
    name: 'new:latest',
    outcome: 'create',
    actions: [
      { type: 'pull', remote: 'r/new:1', privileges: [], reason: 'not installed' },
      { type: 'enable', timeoutSeconds: 30, reason: 'spec.enabled is true' },
    ],
  },
  {
    key: 'vol',
    name: 'vol:latest',
    outcome: 'configure',
    actions: [
      { type: 'disable', force: false, reason: 'settings can only be changed while disabled' },
      {
        type: 'set',
        changes: ['DEBUG=1', 'args=--x'],
        differences: ['env DEBUG "0" -> "1"', 'args [] -> ["--x"]'],
        declared: {},
        reason: 'settings differ: env DEBUG "0" -> "1", args [] -> ["--x"]',
      },
      { type: 'enable', timeoutSeconds: 30, reason: 'was enabled before the change' },
    ],
  },
  {
    key: 'old',
    name: 'old:latest',
    outcome: 'delete',
    actions: [{ type: 'remove', force: false, reason: 'no longer declared' }],
  },
] as unknown as PluginPlan[];

test('colour follows NO_COLOR, FORCE_COLOR, TERM=dumb and whether stdout is a terminal', () => {
  assert.equal(colorEnabled({}, { isTTY: true }), true);
  assert.equal(colorEnabled({}, { isTTY: false }), false);
  assert.equal(colorEnabled({ NO_COLOR: '1' }, { isTTY: true }), false);
  assert.equal(colorEnabled({ NO_COLOR: '' }, { isTTY: true }), true, 'an empty NO_COLOR is unset');
  assert.equal(colorEnabled({ TERM: 'dumb' }, { isTTY: true }), false);
  assert.equal(colorEnabled({ FORCE_COLOR: '1' }, { isTTY: false }), true);
  assert.equal(colorEnabled({ FORCE_COLOR: '1', NO_COLOR: '1' }, { isTTY: true }), false, 'NO_COLOR wins');
});

test('a coloured diff: additions green, removals red, settings as before -> after', () => {
  const text = renderPlans(plans, { showUnchanged: false, color: true });
  const lines = text.split('\n');
  assert.ok(
    lines[0]!.includes(GREEN) &&
      stripVTControlCharacters(lines[0]!) === '+ dockerplugin/new (new:latest): create',
  );
  assert.ok(lines[1]!.startsWith(GREEN), 'pull is an addition');
  assert.ok(lines.find((l) => l.includes('dockerplugin/old'))!.includes(RED));
  assert.ok(lines.find((l) => l.includes('remove'))!.startsWith(RED));
  const debug = lines.find((l) => l.includes('env DEBUG:'))!;
  assert.equal(debug, `        env DEBUG: ${RED}"0"\u001b[39m -> ${GREEN}"1"\u001b[39m`);
  assert.equal(
    stripVTControlCharacters(lines.find((l) => l.includes('args:'))!),
    '        args: [] -> ["--x"]',
  );
  assert.match(lines.at(-2)!, /^Plan: 1 to create, 1 to configure, 1 to delete/);
});

test('without colour the diff is the plain text it always was', () => {
  const plain = renderPlans(plans, { showUnchanged: false });
  assert.ok(!plain.includes('\u001b'));
  assert.ok(!plain.includes('env DEBUG:'), 'settings stay in the reason, one line per action');
  assert.match(
    plain,
    /^ {4}set DEBUG=1 args=--x {2}\(settings differ: env DEBUG "0" -> "1", args \[\] -> \["--x"\]\)$/m,
  );
});
