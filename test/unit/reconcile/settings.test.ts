import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  declaredSettingStrings,
  declaresSettings,
  diffSettings,
} from '../../../controller/reconcile/settings.ts';
import type { SettingsDiff } from '../../../controller/reconcile/settings.ts';
import type { DesiredSettings as PluginSettings } from '../../../controller/reconcile/desired.ts';
import type { EffectiveSettings, SettableDefaults } from '../../../controller/store/store.ts';
import { defaults, effective } from './fixtures.ts';

interface DiffCase {
  name: string;
  declared: PluginSettings;
  actual?: Partial<EffectiveSettings>;
  defaults?: Partial<SettableDefaults>;
  changes?: string[];
  differences?: string[];
  /** fragments that must appear, one problem per entry, in order */
  problems?: string[];
}

const cases: DiffCase[] = [
  { name: 'nothing declared, everything at its default -> no diff', declared: {} },
  {
    name: 'declared values equal to the effective ones -> no diff',
    declared: { env: { GREETING: 'hi' }, args: ['a'], mounts: { state: '/x' } },
    actual: { env: { GREETING: 'hi', DEBUG: '0' }, args: ['a'], mounts: { state: '/x' } },
  },
  {
    name: 'env differs -> KEY=value and a human difference',
    declared: { env: { GREETING: 'hi' } },
    changes: ['GREETING=hi'],
    differences: ['env GREETING "hello" -> "hi"'],
  },
  {
    name: 'env value with spaces and = signs is passed through verbatim',
    declared: { env: { GREETING: 'hello world=1' } },
    changes: ['GREETING=hello world=1'],
  },
  {
    name: 'env key removed from the document -> reverts to the config default',
    declared: {},
    actual: { env: { GREETING: 'hi', DEBUG: '1' } },
    changes: ['GREETING=hello', 'DEBUG=0'],
    differences: ['env GREETING "hi" -> "hello"', 'env DEBUG "1" -> "0"'],
  },
  {
    name: 'a value missing from the effective settings counts as its default',
    declared: { env: { DEBUG: '0' } },
    actual: { env: {}, mounts: {}, devices: {} },
  },
  {
    name: 'a value missing from the effective settings that is declared otherwise -> change',
    declared: { env: { DEBUG: '1' } },
    actual: { env: {} },
    changes: ['DEBUG=1'],
    differences: ['env DEBUG "0" -> "1"'],
  },
  {
    name: 'unknown env key -> problem naming the keys the config declares',
    declared: { env: { NOPE: '1' } },
    problems: ["env NOPE: the plugin's config declares no such env (it declares: GREETING, DEBUG)"],
  },
  {
    name: 'unknown key when the config declares none of that kind -> problem without a list',
    declared: { devices: { gpu: '/dev/nvidia0' } },
    defaults: { devices: {} },
    problems: ["device gpu: the plugin's config declares no such device"],
  },
  {
    name: 'not settable but declared equal to its default -> fine',
    declared: { devices: { fuse: '/dev/fuse' } },
  },
  {
    name: 'not settable and declared otherwise -> problem, no change',
    declared: { devices: { fuse: '/dev/loop0' } },
    problems: ['device fuse is not settable in the plugin\'s config (wanted "/dev/loop0")'],
  },
  {
    name: 'settable device differs -> name.path=value',
    declared: { devices: { fuse: '/dev/loop0' } },
    defaults: { devices: { fuse: { path: '/dev/fuse', settable: true } } },
    changes: ['fuse.path=/dev/loop0'],
    differences: ['device fuse "/dev/fuse" -> "/dev/loop0"'],
  },
  {
    name: 'mount differs -> name.source=value',
    declared: { mounts: { state: '/x' } },
    changes: ['state.source=/x'],
    differences: ['mount state "/var/lib/vol" -> "/x"'],
  },
  {
    name: 'args differ -> <argsName>=a b',
    declared: { args: ['a', 'b'] },
    changes: ['args=a b'],
    differences: ['args [] -> ["a","b"]'],
  },
  {
    name: "args use the config's Args.Name",
    declared: { args: ['--verbose'] },
    defaults: { args: { name: 'flags', value: [], settable: true } },
    changes: ['flags=--verbose'],
  },
  {
    name: 'args in another order are different args',
    declared: { args: ['b', 'a'] },
    actual: { args: ['a', 'b'] },
    changes: ['args=b a'],
  },
  {
    name: 'args removed from the document -> revert to the config default',
    declared: {},
    actual: { args: ['-v'] },
    defaults: { args: { name: 'args', value: ['-q'], settable: true } },
    changes: ['args=-q'],
  },
  {
    name: 'empty args declared over set ones -> args= (empty)',
    declared: { args: [] },
    actual: { args: ['-v'] },
    changes: ['args='],
  },
  {
    name: 'an argument with whitespace -> problem (the engine splits on whitespace)',
    declared: { args: ['--name', 'a b'] },
    problems: ['args ["a b"]: arguments may not be empty or contain whitespace'],
  },
  {
    name: 'an argument with a tab or newline -> problem',
    declared: { args: ['a\tb', 'c\nd'] },
    problems: ['args ["a\\tb","c\\nd"]'],
  },
  {
    name: 'an empty argument -> problem',
    declared: { args: ['-v', ''] },
    problems: ['args [""]: arguments may not be empty'],
  },
  {
    name: 'args declared but not settable -> problem',
    declared: { args: ['-v'] },
    defaults: { args: { name: 'args', value: [], settable: false } },
    problems: ["args are not settable in this plugin's config"],
  },
  {
    name: 'args declared equal to a not-settable default -> fine',
    declared: { args: ['-q'] },
    actual: { args: ['-q'] },
    defaults: { args: { name: 'args', value: ['-q'], settable: false } },
  },
  {
    name: 'args declared but the config declares no args -> problem',
    declared: { args: ['-v'] },
    defaults: { args: { name: '', value: [], settable: true } },
    problems: ["args: the plugin's config declares no args"],
  },
  {
    name: 'every kind at once: changes in the order env, mounts, devices, args; problems collected',
    declared: {
      env: { DEBUG: '1', GREETING: 'hi', EXTRA: 'x' },
      mounts: { state: '/x' },
      devices: { fuse: '/dev/fuse' },
      args: ['-v'],
    },
    changes: ['GREETING=hi', 'DEBUG=1', 'state.source=/x', 'args=-v'],
    problems: ['env EXTRA'],
  },
];

describe('diffSettings', () => {
  for (const c of cases) {
    test(c.name, () => {
      const diff: SettingsDiff = diffSettings(c.declared, effective(c.actual), defaults(c.defaults));
      assert.deepEqual(diff.changes, c.changes ?? [], 'changes');
      if (c.differences !== undefined) assert.deepEqual(diff.differences, c.differences, 'differences');
      else assert.equal(diff.differences.length, diff.changes.length, 'one difference per change');
      const wanted = c.problems ?? [];
      assert.equal(diff.problems.length, wanted.length, `problems: ${JSON.stringify(diff.problems)}`);
      wanted.forEach((fragment, i) => {
        assert.ok(
          diff.problems[i]?.includes(fragment),
          `problem ${i}: ${diff.problems[i]} lacks ${fragment}`,
        );
      });
    });
  }

  test('is pure: neither the declaration nor the installed state is modified', () => {
    const declared: PluginSettings = { env: { GREETING: 'hi' }, args: ['a'] };
    const actual = effective();
    const defs = defaults();
    const before = structuredClone({ declared, actual, defs });
    diffSettings(declared, actual, defs);
    assert.deepEqual({ declared, actual, defs }, before);
  });

  test('applying the changes and diffing again gives no diff', () => {
    const declared: PluginSettings = { env: { DEBUG: '1' }, mounts: { state: '/x' }, args: ['a', 'b'] };
    const first = diffSettings(declared, effective({ env: { GREETING: 'hi', DEBUG: '0' } }), defaults());
    assert.deepEqual(first.changes, ['GREETING=hello', 'DEBUG=1', 'state.source=/x', 'args=a b']);
    const after = effective({
      env: { GREETING: 'hello', DEBUG: '1' },
      mounts: { state: '/x' },
      args: ['a', 'b'],
    });
    assert.deepEqual(diffSettings(declared, after, defaults()), {
      changes: [],
      differences: [],
      problems: [],
    });
  });
});

describe('declaredSettingStrings', () => {
  test("renders every declared value in engine syntax, using the pulled config's args name", () => {
    assert.deepEqual(
      declaredSettingStrings(
        {
          env: { GREETING: 'hi', DEBUG: '1' },
          mounts: { state: '/x' },
          devices: { fuse: '/dev/fuse' },
          args: ['-v', '--x=1'],
        },
        'flags',
      ),
      ['GREETING=hi', 'DEBUG=1', 'state.source=/x', 'fuse.path=/dev/fuse', 'flags=-v --x=1'],
    );
  });

  test('nothing declared -> nothing to send', () => {
    assert.deepEqual(declaredSettingStrings({}, 'args'), []);
  });

  test('args are only sent when declared; empty args are sent as an empty value', () => {
    assert.deepEqual(declaredSettingStrings({ env: { A: '1' } }, 'args'), ['A=1']);
    assert.deepEqual(declaredSettingStrings({ args: [] }, 'args'), ['args=']);
  });
});

describe('declaresSettings', () => {
  const rows: [PluginSettings, boolean][] = [
    [{}, false],
    [{ env: {}, mounts: {}, devices: {} }, false],
    [{ env: { A: '1' } }, true],
    [{ mounts: { state: '/x' } }, true],
    [{ devices: { fuse: '/dev/fuse' } }, true],
    [{ args: [] }, true],
  ];
  for (const [settings, expected] of rows) {
    test(`${JSON.stringify(settings)} -> ${expected}`, () =>
      assert.equal(declaresSettings(settings), expected));
  }
});

describe('diffSettings: regressions', () => {
  test('an env key named like an Object.prototype member (toString) is reported as unknown', () => {
    const diff = diffSettings({ env: { toString: '1' } }, effective(), defaults());
    assert.equal(diff.problems.length, 1, JSON.stringify(diff));
  });

  test('config-default args with whitespace do not block a plugin whose document declares no args', () => {
    const args = { name: 'args', value: ['--opt', 'a b'], settable: true };
    const diff = diffSettings({}, effective({ args: ['--opt', 'a b'] }), defaults({ args }));
    assert.deepEqual(diff, { changes: [], differences: [], problems: [] });
  });

  test('args that are not settable and drifted from their default are a problem, like env/mounts/devices', () => {
    const args = { name: 'args', value: [], settable: false };
    const diff = diffSettings({}, effective({ args: ['-v'] }), defaults({ args }));
    assert.deepEqual(diff.changes, []);
    assert.equal(diff.problems.length, 1);
  });
});
