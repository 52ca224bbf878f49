/**
 * computePrivileges against moby's rules (a table of configs, then a property over random
 * configs: the output is exactly what the config implies, in moby's order, nothing more), and
 * parsePluginConfig's Go-like decoding.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PluginConfigError } from '../../../controller/plugin/config.ts';
import { parsePluginConfig } from '../../../controller/plugin/config.ts';
import { computePrivileges } from '../../../controller/plugin/privileges.ts';
import type { PluginPrivilege } from '../../../controller/api/types.ts';

const SOURCE = '127.0.0.1:5000/test/vol';

function privileges(json: Record<string, unknown>): [string, string[]][] {
  return computePrivileges(parsePluginConfig(json, SOURCE)).map((p) => [p.name, p.value]);
}

describe('computePrivileges: moby rules', () => {
  const table: { name: string; config: Record<string, unknown>; expected: [string, string[]][] }[] = [
    { name: 'empty config', config: {}, expected: [] },
    { name: 'network type ""', config: { Network: { Type: '' } }, expected: [] },
    { name: 'network type "null"', config: { Network: { Type: 'null' } }, expected: [] },
    { name: 'network type "bridge"', config: { Network: { Type: 'bridge' } }, expected: [] },
    { name: 'network JSON null', config: { Network: { Type: null } }, expected: [] },
    { name: 'network host', config: { Network: { Type: 'host' } }, expected: [['network', ['host']]] },
    {
      name: 'network "none" is a privilege',
      config: { Network: { Type: 'none' } },
      expected: [['network', ['none']]],
    },
    {
      name: 'network "Bridge" (case matters)',
      config: { Network: { Type: 'Bridge' } },
      expected: [['network', ['Bridge']]],
    },
    { name: 'host ipc', config: { IpcHost: true }, expected: [['host ipc namespace', ['true']]] },
    { name: 'host pid', config: { PidHost: true }, expected: [['host pid namespace', ['true']]] },
    {
      name: 'mounts: a Source (even empty) asks, an absent or null one does not',
      config: {
        Mounts: [
          { Name: 'a', Source: '/var/lib/a', Destination: '/a' },
          { Name: 'b', Destination: '/b' },
          { Name: 'c', Source: null, Destination: '/c' },
          { Name: 'd', Source: '', Destination: '/d' },
        ],
      },
      expected: [
        ['mount', ['/var/lib/a']],
        ['mount', ['']],
      ],
    },
    {
      name: 'devices: a Path asks, an absent one does not',
      config: { Linux: { Devices: [{ Name: 'fuse', Path: '/dev/fuse' }, { Name: 'x' }] } },
      expected: [['device', ['/dev/fuse']]],
    },
    {
      name: 'allow all devices',
      config: { Linux: { AllowAllDevices: true } },
      expected: [['allow-all-devices', ['true']]],
    },
    {
      name: 'capabilities kept as written',
      config: { Linux: { Capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] } },
      expected: [['capabilities', ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']]],
    },
    { name: 'empty capabilities', config: { Linux: { Capabilities: [] } }, expected: [] },
    {
      name: "everything, in moby's order",
      config: {
        Linux: { Capabilities: ['CAP_SYS_ADMIN'], AllowAllDevices: true, Devices: [{ Path: '/dev/null' }] },
        Mounts: [{ Source: '/tmp' }],
        PidHost: true,
        IpcHost: true,
        Network: { Type: 'host' },
      },
      expected: [
        ['network', ['host']],
        ['host ipc namespace', ['true']],
        ['host pid namespace', ['true']],
        ['mount', ['/tmp']],
        ['device', ['/dev/null']],
        ['allow-all-devices', ['true']],
        ['capabilities', ['CAP_SYS_ADMIN']],
      ],
    },
    {
      name: 'keys match case-insensitively, like Go encoding/json',
      config: { network: { type: 'host' }, linux: { capabilities: ['CAP_X'] }, ipchost: true },
      expected: [
        ['network', ['host']],
        ['host ipc namespace', ['true']],
        ['capabilities', ['CAP_X']],
      ],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      assert.deepEqual(privileges(row.config), row.expected);
    });
  }

  it("uses moby's descriptions", () => {
    const all = computePrivileges(
      parsePluginConfig(
        {
          Network: { Type: 'host' },
          IpcHost: true,
          PidHost: true,
          Mounts: [{ Source: '/x' }],
          Linux: { Devices: [{ Path: '/dev/x' }], AllowAllDevices: true, Capabilities: ['CAP_X'] },
        },
        SOURCE,
      ),
    );
    assert.deepEqual(
      all.map((p) => p.description),
      [
        'permissions to access a network',
        'allow access to host ipc namespace',
        'allow access to host pid namespace',
        'host path to mount',
        'host device to access',
        "allow 'rwm' access to all devices",
        'list of additional capabilities required',
      ],
    );
  });
});

describe('parsePluginConfig', () => {
  it('fills Go zero values and keeps pointer fields null', () => {
    const config = parsePluginConfig({ Mounts: [{ Name: 'm' }], Env: [{ Name: 'E' }] }, SOURCE);
    assert.equal(config.Network.Type, '');
    assert.deepEqual(config.Entrypoint, []);
    assert.equal(config.Mounts[0]?.Source, null);
    assert.equal(config.Env[0]?.Value, null);
    assert.deepEqual(config.rootfs, { type: '', diff_ids: [] });
  });

  it('reads rootfs.diff_ids', () => {
    const config = parsePluginConfig({ rootfs: { type: 'layers', diff_ids: ['sha256:aa'] } }, SOURCE);
    assert.deepEqual(config.rootfs.diff_ids, ['sha256:aa']);
  });

  for (const [name, json, field] of [
    ['a string where a bool belongs', { IpcHost: 'yes' }, 'IpcHost'],
    ['a number as a mount source', { Mounts: [{ Source: 5 }] }, 'Mounts[0].Source'],
    ['an object as capabilities', { Linux: { Capabilities: { a: 1 } } }, 'Linux.Capabilities'],
    ['an array as the config', [], 'not a JSON object'],
    ['a negative UID', { User: { UID: -1 } }, 'User.UID'],
  ] as const) {
    it(`refuses ${name} with PLUGIN_CONFIG_INVALID naming the field`, () => {
      assert.throws(
        () => parsePluginConfig(json, SOURCE),
        (error: unknown) =>
          error instanceof PluginConfigError &&
          error.code === 'PLUGIN_CONFIG_INVALID' &&
          error.kind === 'stalled' &&
          error.message.includes(field) &&
          error.message.includes('127.0.0.1:5000/test/vol'),
      );
    });
  }
});

/** The privileges a config implies, computed independently of the implementation. */
interface Generated {
  network: string | null | undefined;
  ipc: boolean | undefined;
  pid: boolean | undefined;
  mounts: (string | null | undefined)[];
  devices: (string | null | undefined)[];
  allowAll: boolean | undefined;
  caps: string[] | null | undefined;
  upperKeys: boolean;
}

function toJson(g: Generated): Record<string, unknown> {
  const k = (name: string): string => (g.upperKeys ? name : name.toLowerCase());
  const config: Record<string, unknown> = {};
  if (g.network !== undefined) config[k('Network')] = { [k('Type')]: g.network };
  if (g.ipc !== undefined) config[k('IpcHost')] = g.ipc;
  if (g.pid !== undefined) config[k('PidHost')] = g.pid;
  config[k('Mounts')] = g.mounts.map((source, i) =>
    source === undefined ? { Name: `m${i}` } : { Name: `m${i}`, [k('Source')]: source },
  );
  const linux: Record<string, unknown> = {
    [k('Devices')]: g.devices.map((path, i) =>
      path === undefined ? { Name: `d${i}` } : { Name: `d${i}`, [k('Path')]: path },
    ),
  };
  if (g.allowAll !== undefined) linux[k('AllowAllDevices')] = g.allowAll;
  if (g.caps !== undefined) linux[k('Capabilities')] = g.caps;
  config[k('Linux')] = linux;
  return config;
}

function implied(g: Generated): [string, string[]][] {
  const out: [string, string[]][] = [];
  if (typeof g.network === 'string' && !['', 'null', 'bridge'].includes(g.network))
    out.push(['network', [g.network]]);
  if (g.ipc === true) out.push(['host ipc namespace', ['true']]);
  if (g.pid === true) out.push(['host pid namespace', ['true']]);
  for (const source of g.mounts) if (typeof source === 'string') out.push(['mount', [source]]);
  for (const path of g.devices) if (typeof path === 'string') out.push(['device', [path]]);
  if (g.allowAll === true) out.push(['allow-all-devices', ['true']]);
  if (Array.isArray(g.caps) && g.caps.length > 0) out.push(['capabilities', g.caps]);
  return out;
}

describe('computePrivileges: property', () => {
  const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined> =>
    fc.oneof(arb, fc.constant(null), fc.constant(undefined));
  const generated: fc.Arbitrary<Generated> = fc.record({
    network: maybe(fc.oneof(fc.constantFrom('', 'null', 'bridge', 'host', 'none', 'Bridge'), fc.string())),
    ipc: fc.option(fc.boolean(), { nil: undefined }),
    pid: fc.option(fc.boolean(), { nil: undefined }),
    mounts: fc.array(maybe(fc.oneof(fc.constant(''), fc.string())), { maxLength: 5 }),
    devices: fc.array(maybe(fc.string()), { maxLength: 5 }),
    allowAll: fc.option(fc.boolean(), { nil: undefined }),
    caps: maybe(fc.array(fc.constantFrom('CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_MKNOD'), { maxLength: 4 })),
    upperKeys: fc.boolean(),
  });

  it('yields exactly the privileges the config implies, in order, and none it does not', () => {
    fc.assert(
      fc.property(generated, (g) => {
        const actual: PluginPrivilege[] = computePrivileges(parsePluginConfig(toJson(g), SOURCE));
        assert.deepEqual(
          actual.map((p) => [p.name, p.value]),
          implied(g),
        );
      }),
      { numRuns: 2000 },
    );
  });
});
