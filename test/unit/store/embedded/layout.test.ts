/**
 * The on-disk record: what plugctl writes has moby's v2.Plugin shape and key order, reads back to
 * the same plugin, and a record dockerd 20.10 wrote (shape taken from moby's structs: interface
 * types as strings, Go nulls, fields plugctl does not know) loads, maps to the same InstalledPlugin
 * the docker store would report, and keeps its unknown fields through a rewrite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePluginConfig } from '../../../../controller/plugin/config.ts';
import { toInstalledPlugin } from '../../../../controller/store/docker/store.ts';
import {
  StoreLayout,
  generatePluginId,
  goInterfaceType,
  mobyConfigJson,
  newStoredPlugin,
  parseStoredPlugin,
} from '../../../../controller/store/embedded/layout.ts';
import type { JsonObject } from '../../../../controller/store/embedded/layout.ts';

const ID = '7a3c'.padEnd(64, '0');

/** A config.json as dockerd 20.10 writes it after `docker plugin install` and one `set`. */
const DOCKERD_RECORD = {
  plugin: {
    Config: {
      Args: { Description: 'extra arguments', Name: 'args', Settable: ['value'], Value: ['--label=1.0'] },
      Description: 'plugctl test volume plugin 1.0',
      DockerVersion: '20.10.24+dfsg1',
      Documentation: 'https://example.invalid/plugctl/test/vol',
      Entrypoint: ['/bin/plugind', '/run/docker/plugins/plugind.sock'],
      Env: [
        { Description: 'greeting printed at start', Name: 'GREETING', Settable: ['value'], Value: 'hello' },
        { Description: 'debug level', Name: 'DEBUG', Settable: ['value'], Value: '0' },
      ],
      Interface: { Socket: 'plugind.sock', Types: ['docker.volumedriver/1.0'] },
      IpcHost: false,
      Linux: { AllowAllDevices: false, Capabilities: null, Devices: null },
      Mounts: null,
      Network: { Type: 'host' },
      PidHost: false,
      PropagatedMount: '',
      User: {},
      WorkDir: '/',
      rootfs: { diff_ids: ['sha256:'.padEnd(71, 'f')], type: 'layers' },
    },
    Enabled: true,
    Id: ID,
    Name: '127.0.0.1:5000/test/vol:1.0',
    PluginReference: '127.0.0.1:5000/test/vol:1.0',
    Settings: { Args: ['--label=1.0'], Devices: [], Env: ['GREETING=bonjour', 'DEBUG=0'], Mounts: [] },
  },
  Rootfs: `/var/lib/docker/plugins/${ID}/rootfs`,
  Config: 'sha256:'.padEnd(71, 'a'),
  Blobsums: null,
  Manifest: 'sha256:'.padEnd(71, 'b'),
  SwarmServiceID: '',
  FutureField: { kept: true },
};

describe('StoreLayout', () => {
  it('names moby paths', () => {
    const layout = new StoreLayout('/var/lib/plugctl/plugins');
    assert.equal(layout.configFile(ID), `/var/lib/plugctl/plugins/${ID}/config.json`);
    assert.equal(layout.rootfs(ID), `/var/lib/plugctl/plugins/${ID}/rootfs`);
    assert.equal(layout.removing(ID), `/var/lib/plugctl/plugins/${ID}-removing`);
    assert.equal(layout.tmp, '/var/lib/plugctl/plugins/tmp');
    assert.equal(
      layout.blobPath(`sha256:${'e'.repeat(64)}`),
      `/var/lib/plugctl/plugins/storage/blobs/sha256/${'e'.repeat(64)}`,
    );
    assert.equal(layout.lockFile, '/var/lib/plugctl/plugins/plugctl.lock');
  });

  it('generates 64-hex IDs whose short form is never all digits', () => {
    for (let i = 0; i < 200; i++) {
      const id = generatePluginId();
      assert.match(id, /^[a-f0-9]{64}$/);
      assert.doesNotMatch(id.slice(0, 12), /^[0-9]{12}$/);
    }
  });
});

describe('goInterfaceType (Go UnmarshalJSON + MarshalJSON)', () => {
  const rows: [string, string][] = [
    ['docker.volumedriver/1.0', 'docker.volumedriver/1.0'],
    ['docker.log.driver/1.0', 'docker.log.driver/1.0'],
    ['docker.authz/1.0', 'docker.authz/1.0'],
    ['docker.volumedriver', 'docker.volumedriver/'],
    ['volumedriver/1.0', '.olumedriver/1.0'],
  ];
  for (const [input, expected] of rows) it(input, () => assert.equal(goInterfaceType(input), expected));
});

describe('records plugctl writes', () => {
  const config = parsePluginConfig(
    {
      Description: 'd',
      Entrypoint: ['/p'],
      Interface: { Socket: 's.sock', Types: ['docker.volumedriver/1.0'] },
      Env: [
        { Name: 'A', Value: '1', Settable: ['value'] },
        { Name: 'B', Settable: ['value'] },
      ],
      Mounts: [
        {
          Name: 'm',
          Source: '/src',
          Destination: '/dst',
          Type: 'bind',
          Options: ['rbind'],
          Settable: ['source'],
        },
      ],
      Linux: {
        Capabilities: ['CAP_SYS_ADMIN'],
        Devices: [{ Name: 'fuse', Path: '/dev/fuse', Settable: ['path'] }],
      },
      Args: { Name: 'args', Value: ['-v'], Settable: ['value'] },
      User: { UID: 0, GID: 7 },
      rootfs: { type: 'layers', diff_ids: ['sha256:'.padEnd(71, '1')] },
    },
    'r/p',
  );
  const record = newStoredPlugin({
    id: ID,
    name: 'p:1',
    reference: 'docker.io/library/p:1',
    config,
    dockerVersion: '20.10.24',
    configDigest: 'sha256:'.padEnd(71, 'a'),
    manifestDigest: 'sha256:'.padEnd(71, 'b'),
    blobsums: ['sha256:'.padEnd(71, 'c')],
  });

  it("has moby's shape and key order", () => {
    const json = JSON.parse(record.serialize()) as JsonObject;
    assert.deepEqual(Object.keys(json), [
      'plugin',
      'Rootfs',
      'Config',
      'Blobsums',
      'Manifest',
      'SwarmServiceID',
    ]);
    const plugin = json['plugin'] as JsonObject;
    assert.deepEqual(Object.keys(plugin), ['Config', 'Enabled', 'Id', 'Name', 'PluginReference', 'Settings']);
    assert.deepEqual(Object.keys(plugin['Config'] as JsonObject), [
      'Args',
      'Description',
      'DockerVersion',
      'Documentation',
      'Entrypoint',
      'Env',
      'Interface',
      'IpcHost',
      'Linux',
      'Mounts',
      'Network',
      'PidHost',
      'PropagatedMount',
      'User',
      'WorkDir',
      'rootfs',
    ]);
    assert.deepEqual((plugin['Config'] as JsonObject)['User'], { GID: 7 });
    // InitEmptySettings: env only for entries with a value, mounts and devices copied, args copied
    assert.deepEqual(plugin['Settings'], {
      Args: ['-v'],
      Devices: [{ Description: '', Name: 'fuse', Path: '/dev/fuse', Settable: ['path'] }],
      Env: ['A=1'],
      Mounts: [
        {
          Description: '',
          Destination: '/dst',
          Name: 'm',
          Options: ['rbind'],
          Settable: ['source'],
          Source: '/src',
          Type: 'bind',
        },
      ],
    });
    assert.equal(plugin['Enabled'], false);
  });

  it('reads back to the same plugin', () => {
    const again = parseStoredPlugin(JSON.parse(record.serialize()) as unknown, ID);
    assert.ok(typeof again !== 'string');
    assert.equal(again.serialize(), record.serialize());
    const { privileges, ...installed } = toInstalledPlugin(again.pluginObject);
    assert.deepEqual(
      privileges.map((p) => p.name),
      ['mount', 'device', 'capabilities'],
    );
    assert.deepEqual(installed, {
      id: ID,
      name: 'p:1',
      socket: 's.sock',
      reference: 'docker.io/library/p:1',
      enabled: false,
      settings: { env: { A: '1' }, args: ['-v'], mounts: { m: '/src' }, devices: { fuse: '/dev/fuse' } },
      defaults: {
        env: { A: { value: '1', settable: true }, B: { value: '', settable: true } },
        args: { name: 'args', value: ['-v'], settable: true },
        mounts: { m: { source: '/src', settable: true } },
        devices: { fuse: { path: '/dev/fuse', settable: true } },
      },
      capabilities: ['volumedriver'],
      diffIds: ['sha256:'.padEnd(71, '1')],
    });
    assert.equal(again.configDigest, 'sha256:'.padEnd(71, 'a'));
    assert.deepEqual(again.blobsums, ['sha256:'.padEnd(71, 'c')]);
  });

  it('keeps the config stable through parse -> moby JSON -> parse', () => {
    const once = mobyConfigJson(config);
    const twice = mobyConfigJson(parsePluginConfig(once, 'r/p'));
    assert.deepEqual(twice, once);
  });
});

describe('records dockerd wrote', () => {
  it('load, map like the docker store, and keep unknown fields through a rewrite', () => {
    const loaded = parseStoredPlugin(structuredClone(DOCKERD_RECORD), ID);
    assert.ok(typeof loaded !== 'string', String(loaded));
    assert.equal(loaded.enabled, true);
    assert.equal(loaded.name, '127.0.0.1:5000/test/vol:1.0');
    assert.deepEqual(loaded.blobsums, [], 'dockerd leaves Blobsums empty (null) for gzip layers');
    const installed = toInstalledPlugin(loaded.pluginObject);
    assert.deepEqual(installed.settings.env, { GREETING: 'bonjour', DEBUG: '0' });
    assert.deepEqual(installed.capabilities, ['volumedriver']);
    const rewritten = loaded.with((json) => {
      (json['plugin'] as JsonObject)['Enabled'] = false;
    });
    const json = JSON.parse(rewritten.serialize()) as JsonObject;
    assert.deepEqual(json['FutureField'], { kept: true });
    assert.equal((json['plugin'] as JsonObject)['Enabled'], false);
    assert.equal(loaded.enabled, true, 'with() copies');
  });

  it('reports what makes a record unusable', () => {
    assert.match(String(parseStoredPlugin([], ID)), /not a JSON object/);
    assert.match(String(parseStoredPlugin({}, ID)), /no "plugin" object/);
    assert.match(String(parseStoredPlugin({ plugin: { Id: 'x' } }, ID)), /names plugin ID "x"/);
    assert.match(String(parseStoredPlugin({ plugin: { Id: ID } }, ID)), /no plugin Name/);
    assert.match(String(parseStoredPlugin({ plugin: { Id: ID, Name: 'n' } }, ID)), /no plugin Config/);
  });
});
