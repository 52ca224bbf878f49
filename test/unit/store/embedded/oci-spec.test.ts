/**
 * The runc runtime's pure parts: buildRuntimeSpec against moby's InitSpec (one table row per
 * mapping), the device lookup on the host's real /dev nodes, and — kept in this file because the
 * runtime's other pure helpers are small — RestartPolicy with an injected clock, discovery link
 * naming and mountinfo parsing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PlugctlError } from '../../../../controller/errors.ts';
import { parsePluginConfig } from '../../../../controller/plugin/config.ts';
import type { EffectiveSettings } from '../../../../controller/store/store.ts';
import {
  buildRuntimeSpec,
  DEFAULT_CAPABILITIES,
  DEFAULT_PATH_ENV,
  lookupDevices,
} from '../../../../controller/store/embedded/oci-spec.ts';
import type { OciLinuxDevice, OciRuntimeSpec } from '../../../../controller/store/embedded/oci-spec.ts';
import { discoveryLinkPath, discoveryName } from '../../../../controller/store/embedded/runc-discovery.ts';
import { parseMountInfo } from '../../../../controller/store/embedded/runc-mounts.ts';
import { RestartPolicy } from '../../../../controller/store/embedded/runc-restart.ts';
import type { RunnablePlugin } from '../../../../controller/store/embedded/runtime.ts';

const ID = 'a'.repeat(64);
const ROOTFS = `/var/lib/plugctl/plugins/${ID}/rootfs`;
const SOCKET_DIR = `/run/docker/plugins/${ID}`;
const DEFAULT_DESTINATIONS = [
  '/proc',
  '/dev',
  '/dev/pts',
  '/sys',
  '/sys/fs/cgroup',
  '/dev/mqueue',
  '/dev/shm',
];

function plugin(config: Record<string, unknown>, settings: Partial<EffectiveSettings> = {}): RunnablePlugin {
  return {
    id: ID,
    name: 'vol:latest',
    rootfs: ROOTFS,
    config: parsePluginConfig(
      {
        Entrypoint: ['/bin/plugind', '/run/docker/plugins/x.sock'],
        Interface: { Socket: 'x.sock' },
        ...config,
      },
      '127.0.0.1:5000/test/vol',
    ),
    settings: { env: {}, args: [], mounts: {}, devices: {}, ...settings },
    stateDir: `/var/lib/plugctl/runtime/${ID}`,
  };
}

/** A device lookup that never touches the host: every path is char device 10:<n>. */
function fakeDevices(...paths: string[]): (path: string) => OciLinuxDevice[] {
  return (path) => {
    const index = paths.indexOf(path);
    if (index < 0) throw new Error(`${path} is not a device node`);
    return [{ path, type: 'c', major: 10, minor: 200 + index, fileMode: 0o666, uid: 0, gid: 0 }];
  };
}

function spec(p: RunnablePlugin, lookup = fakeDevices()): OciRuntimeSpec {
  return buildRuntimeSpec(p, { socketDir: SOCKET_DIR, lookupDevices: lookup });
}

const RUNTIME_MOUNT = {
  destination: '/run/docker/plugins',
  type: 'bind',
  source: SOCKET_DIR,
  options: ['rbind', 'rshared'],
};

describe('buildRuntimeSpec: moby InitSpec mappings', () => {
  const table: { name: string; plugin: RunnablePlugin; check: (s: OciRuntimeSpec) => void }[] = [
    {
      name: 'root: the rootfs, writable',
      plugin: plugin({}),
      check: (s) => assert.deepEqual(s.root, { path: ROOTFS, readonly: false }),
    },
    {
      name: 'process: entrypoint + effective args, no terminal, root user, cwd /',
      plugin: plugin(
        { Args: { Name: 'args', Value: ['--default'] }, User: { UID: 1000, GID: 1000 } },
        { args: ['--a', 'b'] },
      ),
      check: (s) => {
        assert.deepEqual(s.process.args, ['/bin/plugind', '/run/docker/plugins/x.sock', '--a', 'b']);
        assert.equal(s.process.terminal, false);
        // moby ignores config.User
        assert.deepEqual(s.process.user, { uid: 0, gid: 0 });
        assert.equal(s.process.cwd, '/');
        assert.equal('noNewPrivileges' in s.process, false);
        assert.equal('rlimits' in s.process, false);
      },
    },
    {
      name: 'cwd: WorkDir when set',
      plugin: plugin({ WorkDir: '/srv' }),
      check: (s) => assert.equal(s.process.cwd, '/srv'),
    },
    {
      name: 'env: PATH, config defaults in order, settings override, unset null values omitted, extras appended',
      plugin: plugin(
        {
          Env: [
            { Name: 'GREETING', Value: 'hello', Settable: ['value'] },
            { Name: 'UNSET', Value: null, Settable: ['value'] },
            { Name: 'DEBUG', Value: '0', Settable: ['value'] },
            { Name: 'LATER', Settable: ['value'] },
          ],
        },
        { env: { DEBUG: '1', LATER: 'x', EXTRA: 'y' } },
      ),
      check: (s) =>
        assert.deepEqual(s.process.env, [
          DEFAULT_PATH_ENV,
          'GREETING=hello',
          'DEBUG=1',
          'LATER=x',
          'EXTRA=y',
        ]),
    },
    {
      name: 'env: a PATH setting replaces the default one',
      plugin: plugin({ Env: [{ Name: 'PATH', Value: '/opt/bin' }] }),
      check: (s) => assert.deepEqual(s.process.env, ['PATH=/opt/bin']),
    },
    {
      name: 'capabilities: moby defaults, plus the config list (deduplicated), inheritable only the config list',
      plugin: plugin({ Linux: { Capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_ADMIN', 'CAP_CHOWN'] } }),
      check: (s) => {
        const expected = [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'];
        assert.deepEqual(s.process.capabilities.bounding, expected);
        assert.deepEqual(s.process.capabilities.permitted, expected);
        assert.deepEqual(s.process.capabilities.effective, expected);
        assert.deepEqual(s.process.capabilities.inheritable, ['CAP_SYS_ADMIN', 'CAP_CHOWN']);
      },
    },
    {
      name: 'capabilities: none asked -> moby defaults, empty inheritable',
      plugin: plugin({}),
      check: (s) => {
        assert.deepEqual(s.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
        assert.deepEqual(s.process.capabilities.inheritable, []);
      },
    },
    {
      name: 'mounts: defaults, then the sockets dir at /run/docker/plugins (rbind, rshared); no hosts files for Network.Type ""',
      plugin: plugin({}),
      check: (s) => {
        assert.deepEqual(
          s.mounts.map((m) => m.destination),
          [...DEFAULT_DESTINATIONS, '/run/docker/plugins'],
        );
        assert.deepEqual(s.mounts.at(-1), RUNTIME_MOUNT);
        assert.deepEqual(s.mounts[0], {
          destination: '/proc',
          type: 'proc',
          source: 'proc',
          options: ['nosuid', 'noexec', 'nodev'],
        });
        assert.deepEqual(s.mounts.find((m) => m.destination === '/sys')?.options, [
          'nosuid',
          'noexec',
          'nodev',
          'ro',
        ]);
      },
    },
    {
      name: 'mounts: config mounts with effective sources, before the sockets dir',
      plugin: plugin(
        {
          Mounts: [
            {
              Name: 'state',
              Source: '/tmp',
              Destination: '/state',
              Type: 'bind',
              Options: ['rbind', 'rw'],
              Settable: ['source'],
            },
            {
              Name: 'cache',
              Source: '/var/cache/x',
              Destination: '/cache',
              Type: 'bind',
              Options: ['rbind', 'ro'],
            },
          ],
        },
        { mounts: { state: '/srv/state' } },
      ),
      check: (s) => {
        assert.deepEqual(s.mounts.slice(DEFAULT_DESTINATIONS.length), [
          { destination: '/state', type: 'bind', source: '/srv/state', options: ['rbind', 'rw'] },
          { destination: '/cache', type: 'bind', source: '/var/cache/x', options: ['rbind', 'ro'] },
          RUNTIME_MOUNT,
        ]);
      },
    },
    {
      name: 'mounts: a config mount at /dev/shm replaces the default one (and is kept itself)',
      plugin: plugin({
        Mounts: [
          { Name: 'shm', Source: '/dev/shm', Destination: '/dev/shm', Type: 'bind', Options: ['rbind'] },
        ],
      }),
      check: (s) => {
        const shm = s.mounts.filter((m) => m.destination === '/dev/shm');
        assert.deepEqual(shm, [
          { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind'] },
        ]);
      },
    },
    {
      name: 'network host: no network namespace; host /etc/hosts and /etc/resolv.conf read-only',
      plugin: plugin({ Network: { Type: 'host' } }),
      check: (s) => {
        assert.deepEqual(
          s.linux.namespaces.map((n) => n.type),
          ['mount', 'uts', 'pid', 'ipc'],
        );
        assert.deepEqual(s.mounts.slice(-3), [
          RUNTIME_MOUNT,
          { destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['rbind', 'ro'] },
          {
            destination: '/etc/resolv.conf',
            type: 'bind',
            source: '/etc/resolv.conf',
            options: ['rbind', 'ro'],
          },
        ]);
      },
    },
    {
      name: 'network "": its own network namespace, nothing of the host',
      plugin: plugin({ Network: { Type: '' } }),
      check: (s) => {
        assert.deepEqual(
          s.linux.namespaces.map((n) => n.type),
          ['mount', 'network', 'uts', 'pid', 'ipc'],
        );
        assert.equal(
          s.mounts.some((m) => m.destination === '/etc/hosts'),
          false,
        );
      },
    },
    {
      name: 'network "bridge": own namespace, but the hosts files as moby',
      plugin: plugin({ Network: { Type: 'bridge' } }),
      check: (s) => {
        assert.ok(s.linux.namespaces.some((n) => n.type === 'network'));
        assert.ok(s.mounts.some((m) => m.destination === '/etc/resolv.conf'));
      },
    },
    {
      name: 'PidHost and IpcHost: host pid and ipc namespaces',
      plugin: plugin({ PidHost: true, IpcHost: true }),
      check: (s) =>
        assert.deepEqual(
          s.linux.namespaces.map((n) => n.type),
          ['mount', 'network', 'uts'],
        ),
    },
    {
      name: 'devices: none -> moby default device cgroup rules and no device nodes',
      plugin: plugin({}),
      check: (s) => {
        assert.deepEqual(s.linux.devices, []);
        assert.deepEqual(s.linux.resources.devices[0], { allow: false, access: 'rwm' });
        assert.deepEqual(
          s.linux.resources.devices.slice(1).map((r) => [r.allow, r.type, r.major, r.minor, r.access]),
          [
            [true, 'c', 1, 5, 'rwm'],
            [true, 'c', 1, 3, 'rwm'],
            [true, 'c', 1, 9, 'rwm'],
            [true, 'c', 1, 8, 'rwm'],
            [true, 'c', 5, 0, 'rwm'],
            [true, 'c', 5, 1, 'rwm'],
            [false, 'c', 10, 229, 'rwm'],
          ],
        );
      },
    },
    {
      name: 'devices: effective paths looked up and allowed rwm; a device without a path is skipped',
      plugin: plugin(
        {
          Linux: {
            Devices: [
              { Name: 'fuse', Path: '/dev/fuse', Settable: ['path'] },
              { Name: 'other', Path: '/dev/other', Settable: ['path'] },
              { Name: 'nopath' },
            ],
          },
        },
        { devices: { other: '/dev/net/tun' } },
      ),
      check: (s) => {
        assert.deepEqual(
          s.linux.devices.map((d) => [d.path, d.type, d.major, d.minor]),
          [
            ['/dev/fuse', 'c', 10, 200],
            ['/dev/net/tun', 'c', 10, 201],
          ],
        );
        assert.deepEqual(s.linux.resources.devices.slice(-2), [
          { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
          { allow: true, type: 'c', major: 10, minor: 201, access: 'rwm' },
        ]);
        assert.equal(s.linux.resources.devices.length, 8 + 2);
      },
    },
    {
      name: 'AllowAllDevices: one allow-all rule replaces the defaults; device rules follow',
      plugin: plugin({ Linux: { AllowAllDevices: true, Devices: [{ Name: 'fuse', Path: '/dev/fuse' }] } }),
      check: (s) =>
        assert.deepEqual(s.linux.resources.devices, [
          { allow: true, access: 'rwm' },
          { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
        ]),
    },
    {
      name: 'PropagatedMount: <plugin dir>/propagated-mount, rbind rw rshared, before config mounts; rootfs rshared',
      plugin: plugin({
        PropagatedMount: '/data',
        Mounts: [{ Name: 'm', Source: '/tmp', Destination: '/m', Type: 'bind', Options: ['rbind'] }],
      }),
      check: (s) => {
        assert.deepEqual(s.mounts[DEFAULT_DESTINATIONS.length], {
          destination: '/data',
          type: 'bind',
          source: `/var/lib/plugctl/plugins/${ID}/propagated-mount`,
          options: ['rbind', 'rw', 'rshared'],
        });
        assert.equal(s.mounts[DEFAULT_DESTINATIONS.length + 1]?.destination, '/m');
        assert.equal(s.linux.rootfsPropagation, 'rshared');
      },
    },
    {
      name: 'no PropagatedMount: no rootfs propagation',
      plugin: plugin({}),
      check: (s) => assert.equal('rootfsPropagation' in s.linux, false),
    },
    {
      name: 'masked and read-only paths as moby',
      plugin: plugin({}),
      check: (s) => {
        assert.ok(s.linux.maskedPaths.includes('/proc/kcore'));
        assert.ok(s.linux.maskedPaths.includes('/sys/firmware'));
        assert.deepEqual(s.linux.readonlyPaths, [
          '/proc/bus',
          '/proc/fs',
          '/proc/irq',
          '/proc/sys',
          '/proc/sysrq-trigger',
        ]);
      },
    },
  ];

  for (const row of table) {
    it(row.name, () => row.check(spec(row.plugin, fakeDevices('/dev/fuse', '/dev/net/tun'))));
  }

  it('takes the propagated mount source from the options when given', () => {
    const s = buildRuntimeSpec(plugin({ PropagatedMount: '/data' }), {
      socketDir: SOCKET_DIR,
      propagatedMountSource: '/elsewhere/prop',
    });
    assert.equal(s.mounts.find((m) => m.destination === '/data')?.source, '/elsewhere/prop');
  });

  it('refuses a mount without a source, naming it (moby: "mount source is not specified")', () => {
    assert.throws(
      () => spec(plugin({ Mounts: [{ Name: 'state', Destination: '/state', Type: 'bind' }] })),
      (error: unknown) =>
        error instanceof PlugctlError &&
        error.code === 'PLUGIN_SPEC_INVALID' &&
        error.kind === 'stalled' &&
        /"state"/.test(error.message),
    );
  });

  it('a mount source from the settings satisfies a config mount without one', () => {
    const s = spec(
      plugin(
        { Mounts: [{ Name: 'state', Destination: '/state', Type: 'bind' }] },
        { mounts: { state: '/x' } },
      ),
    );
    assert.equal(s.mounts.find((m) => m.destination === '/state')?.source, '/x');
  });

  it('refuses a device path that is not a device, naming the device', () => {
    assert.throws(
      () => spec(plugin({ Linux: { Devices: [{ Name: 'gpu', Path: '/nope' }] } })),
      (error: unknown) =>
        error instanceof PlugctlError &&
        error.code === 'PLUGIN_SPEC_INVALID' &&
        /"gpu".*\/nope/.test(error.message),
    );
  });

  it('serialises to JSON without undefined holes', () => {
    const s = spec(plugin({ Network: { Type: 'host' } }));
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
    assert.equal(s.ociVersion, '1.0.2');
  });
});

describe('lookupDevices: the host device nodes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plugctl-oci-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads major/minor, mode and owner of /dev/null and /dev/zero', () => {
    const [nul] = lookupDevices('/dev/null');
    assert.deepEqual(nul && [nul.path, nul.type, nul.major, nul.minor, nul.fileMode, nul.uid], [
      '/dev/null',
      'c',
      1,
      3,
      0o666,
      0,
    ]);
    const [zero] = lookupDevices('/dev/zero');
    assert.deepEqual(zero && [zero.major, zero.minor], [1, 5]);
  });

  it('refuses a regular file and a missing path', () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    assert.throws(() => lookupDevices(file), /not a device node/);
    assert.throws(() => lookupDevices(join(dir, 'missing')), /does not exist/);
  });
});

describe('RestartPolicy: crash backoff', () => {
  function clock(): { now: () => number; advance: (ms: number) => void } {
    let t = 0;
    return { now: () => t, advance: (ms) => (t += ms) };
  }

  it('waits 1 s after the first crash, doubling per quick crash, capped at 60 s', () => {
    const c = clock();
    const policy = new RestartPolicy({ now: c.now });
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      policy.started();
      c.advance(500);
      delays.push(policy.exited());
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    assert.equal(policy.crashes, 9);
  });

  it('starts over after a run of a minute; a run just under a minute keeps doubling', () => {
    const c = clock();
    const policy = new RestartPolicy({ now: c.now });
    policy.started();
    assert.equal(policy.exited(), 1000);
    policy.started();
    c.advance(59_999);
    assert.equal(policy.exited(), 2000);
    policy.started();
    c.advance(60_000);
    assert.equal(policy.exited(), 1000);
    assert.equal(policy.crashes, 1);
  });

  it('counts a crash without a recorded start (a start that failed) as a quick one', () => {
    const policy = new RestartPolicy({ now: clock().now });
    assert.equal(policy.exited(), 1000);
    assert.equal(policy.exited(), 2000);
  });

  it('takes its bounds from the options, and reset() forgets the crashes', () => {
    const policy = new RestartPolicy({ initialMs: 100, maxMs: 250, resetAfterMs: 10, now: clock().now });
    assert.deepEqual([policy.exited(), policy.exited(), policy.exited()], [100, 200, 250]);
    policy.reset();
    assert.equal(policy.crashes, 0);
    assert.equal(policy.exited(), 100);
  });
});

describe('discovery link names', () => {
  const table: [string, string][] = [
    ['vol:latest', 'vol'],
    ['vol', 'vol'],
    ['vol:1.0', 'vol:1.0'],
    ['vieux/sshfs:latest', 'vieux-sshfs'],
    ['127.0.0.1:5000/test/vol:1.0', '127.0.0.1:5000-test-vol:1.0'],
    ['127.0.0.1:5000/test/vol:latest', '127.0.0.1:5000-test-vol'],
    ['registry:5000/vol', 'registry:5000-vol'],
  ];
  for (const [name, expected] of table) {
    it(`${name} -> ${expected}.sock`, () => {
      assert.equal(discoveryName(name), expected);
      assert.equal(discoveryLinkPath('/run/docker/plugins', name), `/run/docker/plugins/${expected}.sock`);
    });
  }
});

describe('parseMountInfo', () => {
  it('reads mount points (unescaped) and optional fields', () => {
    const text = [
      '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '42 27 254:0 /tmp/a\\040b /tmp/a\\040b rw,relatime - ext4 /dev/vda rw',
      '53 42 0:47 / /x rw,relatime shared:3 master:2 - tmpfs none rw',
      '',
    ].join('\n');
    assert.deepEqual(parseMountInfo(text), [
      { mountPoint: '/', optionalFields: ['shared:1'] },
      { mountPoint: '/tmp/a b', optionalFields: [] },
      { mountPoint: '/x', optionalFields: ['shared:3', 'master:2'] },
    ]);
  });
});
