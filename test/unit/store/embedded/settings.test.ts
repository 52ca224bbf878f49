/**
 * moby's settable rules (plugin/v2/settable.go, Plugin.Set), as a table: each row is a set call on
 * a fresh plugin and either the effective settings and defaults that result (as the store reports
 * them through the docker store's own mapping) or moby's error message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePluginConfig } from '../../../../controller/plugin/config.ts';
import { toInstalledPlugin } from '../../../../controller/store/docker/store.ts';
import { EmbeddedStoreError } from '../../../../controller/store/embedded/errors.ts';
import { newStoredPlugin } from '../../../../controller/store/embedded/layout.ts';
import type { StoredPlugin } from '../../../../controller/store/embedded/layout.ts';
import { applySettings, parseSettable } from '../../../../controller/store/embedded/settings.ts';

const CONFIG = {
  Entrypoint: ['/bin/plugind'],
  Interface: { Socket: 'p.sock', Types: ['docker.volumedriver/1.0'] },
  Env: [
    { Name: 'DEBUG', Settable: ['value'], Value: '0' },
    { Name: 'LOCKED', Settable: [], Value: 'fixed' },
    { Name: 'UNSET', Settable: ['value'], Value: null },
    { Name: 'a.b', Settable: ['value'], Value: 'dotted' },
  ],
  Args: { Name: 'args', Settable: ['value'], Value: ['--default'] },
  Mounts: [
    {
      Name: 'state',
      Source: '/var/lib/state',
      Destination: '/state',
      Type: 'bind',
      Options: ['rbind'],
      Settable: ['source'],
    },
    { Name: 'multi', Source: '/m', Destination: '/m', Type: 'bind', Settable: ['source', 'destination'] },
    { Name: 'nosrc', Destination: '/n', Type: 'bind', Settable: ['source'] },
  ],
  Linux: {
    Capabilities: [],
    Devices: [
      { Name: 'null', Path: '/dev/null', Settable: ['path'] },
      { Name: 'fixed', Path: '/dev/zero', Settable: [] },
    ],
  },
};

function fresh(): StoredPlugin {
  return newStoredPlugin({
    id: 'a'.repeat(64),
    name: 'test/vol:1.0',
    reference: '127.0.0.1:5000/test/vol:1.0',
    config: parsePluginConfig(CONFIG, 'test/vol'),
    configDigest: `sha256:${'c'.repeat(64)}`,
    manifestDigest: `sha256:${'d'.repeat(64)}`,
    blobsums: [`sha256:${'e'.repeat(64)}`],
  });
}

describe('parseSettable (moby newSettable)', () => {
  const rows: [string, { name: string; field: string; value: string }][] = [
    ['DEBUG=1', { name: 'DEBUG', field: '', value: '1' }],
    ['DEBUG', { name: 'DEBUG', field: '', value: '' }],
    ['state.source=/x', { name: 'state', field: 'source', value: '/x' }],
    ['a.b.c=1', { name: 'a.b', field: 'c', value: '1' }],
    ['.hidden=1', { name: '.hidden', field: '', value: '1' }],
    ['K=a=b', { name: 'K', field: '', value: 'a=b' }],
  ];
  for (const [input, expected] of rows) {
    it(JSON.stringify(input), () => assert.deepEqual(parseSettable(input), expected));
  }
});

describe('applySettings: accepted', () => {
  const base = toInstalledPlugin(fresh().pluginObject);
  const rows: [string[], (settings: ReturnType<typeof toInstalledPlugin>) => void][] = [
    [['DEBUG=1'], (p) => assert.deepEqual(p.settings.env, { DEBUG: '1', LOCKED: 'fixed', 'a.b': 'dotted' })],
    [['DEBUG.value=2'], (p) => assert.equal(p.settings.env['DEBUG'], '2')],
    [['DEBUG'], (p) => assert.equal(p.settings.env['DEBUG'], '')],
    [['UNSET=now'], (p) => assert.equal(p.settings.env['UNSET'], 'now')],
    [['args=a b  c'], (p) => assert.deepEqual(p.settings.args, ['a', 'b', '', 'c'])],
    [['args='], (p) => assert.deepEqual(p.settings.args, [''])],
    [
      ['state.source=/x'],
      (p) => {
        assert.deepEqual(p.settings.mounts, { state: '/x', multi: '/m' });
        // dockerd shares the pointer: the reported default follows
        assert.deepEqual(p.defaults.mounts['state'], { source: '/x', settable: true });
      },
    ],
    [['state=/y'], (p) => assert.equal(p.settings.mounts['state'], '/y')],
    [['multi.source=/z'], (p) => assert.equal(p.settings.mounts['multi'], '/z')],
    [
      ['null.path=/dev/full'],
      (p) => {
        assert.deepEqual(p.settings.devices, { null: '/dev/full', fixed: '/dev/zero' });
        assert.deepEqual(p.defaults.devices['null'], { path: '/dev/full', settable: true });
      },
    ],
    [
      ['DEBUG=3', 'args=--x', 'state.source=/s'],
      (p) => {
        assert.equal(p.settings.env['DEBUG'], '3');
        assert.deepEqual(p.settings.args, ['--x']);
        assert.equal(p.settings.mounts['state'], '/s');
      },
    ],
  ];
  for (const [settings, check] of rows) {
    it(JSON.stringify(settings), () => {
      const before = fresh();
      const after = applySettings(before, settings);
      check(toInstalledPlugin(after.pluginObject));
      assert.deepEqual(toInstalledPlugin(before.pluginObject), base, 'the original is not modified');
    });
  }
});

describe('applySettings: rejected with moby messages', () => {
  const rows: [string[], RegExp][] = [
    [['NOPE=1'], /setting "NOPE" not found in the plugin configuration/],
    [['LOCKED=1'], /"LOCKED" is not settable/],
    [['DEBUG.source=1'], /"DEBUG.source" is not settable/],
    [['=x'], /invalid format, must be <name>\[.<field>\]\[=<value>\]/],
    [['multi=/x'], /multiple fields are settable, one must be specified/],
    [['multi.destination=/x'], /"multi.destination" is not settable/],
    [['nosrc.source=/x'], /Plugin config has no mount source/],
    [['fixed.path=/dev/x'], /"fixed.path" is not settable/],
    [['a.b=1'], /setting "a" not found/],
    [['args.value=1', 'NOPE=2'], /setting "NOPE" not found/],
  ];
  for (const [settings, message] of rows) {
    it(JSON.stringify(settings), () => {
      assert.throws(
        () => applySettings(fresh(), settings),
        (error: unknown) =>
          error instanceof EmbeddedStoreError &&
          error.code === 'SETTING_REJECTED' &&
          error.kind === 'stalled' &&
          message.test(error.message) &&
          error.message.includes('test/vol:1.0'),
      );
    });
  }

  it('rejects the whole call: nothing before the bad setting sticks', () => {
    const plugin = fresh();
    assert.throws(() => applySettings(plugin, ['DEBUG=9', 'NOPE=1']));
    assert.equal(toInstalledPlugin(plugin.pluginObject).settings.env['DEBUG'], '0');
  });
});
