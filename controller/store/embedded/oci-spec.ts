/**
 * The OCI runtime spec (runc's config.json) of a managed plugin, built the way moby builds it
 * (daemon/pkg/plugin/v2/plugin_linux.go `InitSpec` on top of daemon/pkg/oci/defaults.go
 * `DefaultLinuxSpec`, identical in 20.10 and 28.x apart from the notes below), so that a plugin
 * behaves the same under plugctl's runc runtime as under dockerd. Where this differs from moby on
 * purpose, the comment at the spot says so.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PlugctlError } from '../../errors.ts';
import type { RunnablePlugin } from './runtime.ts';

/** One mount of the spec (`mounts[]`). */
export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** A device node created in the container (`linux.devices[]`). */
export interface OciLinuxDevice {
  /** path inside the container */
  path: string;
  /** `c` (character) or `b` (block) */
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** permission bits of the node (mode & 0o7777) */
  fileMode: number;
  uid: number;
  gid: number;
}

/** One rule of the device cgroup (`linux.resources.devices[]`); absent fields match everything. */
export interface OciDeviceRule {
  allow: boolean;
  type?: 'c' | 'b' | 'a';
  major?: number;
  minor?: number;
  access: string;
}

/** A namespace the container gets its own copy of; absent types are shared with the host. */
export interface OciNamespace {
  type: 'mount' | 'network' | 'uts' | 'pid' | 'ipc';
}

/** The subset of the OCI runtime spec plugctl writes (runtime-spec 1.0.2, as runc 1.1 reads it). */
export interface OciRuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[] };
  };
  root: { path: string; readonly: boolean };
  mounts: OciMount[];
  /** plugctl's own bookkeeping (runc ignores annotations); see runc.ts */
  annotations?: Record<string, string>;
  linux: {
    namespaces: OciNamespace[];
    devices: OciLinuxDevice[];
    resources: { devices: OciDeviceRule[] };
    maskedPaths: string[];
    readonlyPaths: string[];
    rootfsPropagation?: 'rshared';
  };
}

/**
 * Finds the device node(s) behind a host path, as moby's oci.DevicesFromPath(path, path, "rwm"):
 * a symlink is resolved; a char or block device gives one device; a directory gives every device
 * node below it (paths keep the directory's name as given). Each device keeps `hostPath`'s path
 * inside the container. Throws when nothing there is a device.
 */
export type DeviceLookup = (hostPath: string) => OciLinuxDevice[];

/** Options of buildRuntimeSpec. */
export interface RuntimeSpecOptions {
  /** host directory bind-mounted at /run/docker/plugins (the plugin's sockets directory) */
  socketDir: string;
  /**
   * host directory behind config.PropagatedMount; default `<dirname(rootfs)>/propagated-mount`, as
   * moby (`<plugins root>/<id>/propagated-mount`). The caller makes it an rshared mount point.
   */
  propagatedMountSource?: string;
  /** device lookup, injected by unit tests; default lookupDevices (reads the host's /dev) */
  lookupDevices?: DeviceLookup;
}

/** The version runc 1.1 (Debian 12) writes itself; runc does not reject other 1.0.x versions. */
const OCI_VERSION = '1.0.2';

/** moby's oci.DefaultPathEnv for Linux: the first entry of every plugin's environment. */
export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** moby's caps.DefaultCapabilities (unchanged since 20.10); a plugin's own are added to these. */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

/** Where moby mounts a plugin's sockets directory (defaultPluginRuntimeDestination). */
export const PLUGIN_RUNTIME_DESTINATION = '/run/docker/plugins';

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['ro', 'nosuid', 'noexec', 'nodev'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777'],
    },
  ];
}

/**
 * moby's default device cgroup: deny everything; allow zero (1:5), null (1:3), urandom (1:9),
 * random (1:8), tty (5:0) and console (5:1); deny fuse (10:229) again, so that only a plugin that
 * declares /dev/fuse as a device (its rule comes later) can open it.
 */
function defaultDeviceRules(): OciDeviceRule[] {
  const allow = (major: number, minor: number): OciDeviceRule => ({
    allow: true,
    type: 'c',
    major,
    minor,
    access: 'rwm',
  });
  return [
    { allow: false, access: 'rwm' },
    allow(1, 5),
    allow(1, 3),
    allow(1, 9),
    allow(1, 8),
    allow(5, 0),
    allow(5, 1),
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
  ];
}

/**
 * moby 28's masked paths without the per-CPU thermal_throttle entries it adds after probing the
 * host (runc skips masked paths that do not exist, so listing these unconditionally is harmless).
 */
const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/devices/virtual/powercap',
  '/sys/firmware',
];

const READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/**
 * The environment of the plugin process: moby's PATH first, then the config's variables that have
 * a value (in config order) with the effective settings' values, then settings for variables the
 * config does not declare. Unlike moby, a PATH from the config or settings replaces the default
 * instead of following it (moby passes two PATH entries and the process sees the first).
 */
function effectiveEnv(plugin: RunnablePlugin): string[] {
  const values = new Map<string, string>();
  for (const env of plugin.config.Env) {
    const value = Object.hasOwn(plugin.settings.env, env.Name) ? plugin.settings.env[env.Name] : env.Value;
    if (value !== null && value !== undefined) values.set(env.Name, value);
  }
  for (const [name, value] of Object.entries(plugin.settings.env)) {
    if (!values.has(name)) values.set(name, value);
  }
  const env = values.has('PATH') ? [] : [DEFAULT_PATH_ENV];
  for (const [name, value] of values) env.push(`${name}=${value}`);
  return env;
}

function specError(plugin: RunnablePlugin, message: string, cause?: unknown): PlugctlError {
  return new PlugctlError('PLUGIN_SPEC_INVALID', `plugin ${plugin.name}: ${message}`, {
    kind: 'stalled',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Builds the runtime spec of `plugin` exactly as moby's InitSpec, from its config and effective
 * settings. Pure apart from `lookupDevices` (reads device nodes when the config has devices).
 *
 * - root: the rootfs, writable (moby: `Readonly: false`).
 * - process: args = Entrypoint + effective args (`settings.args` is the effective list, the config's
 *   Args.Value already applied); cwd = WorkDir or `/`; env as effectiveEnv; no terminal; uid/gid
 *   0 — moby ignores config.User, so a plugin's User is ignored here too (it would not be able to
 *   create its socket in the root-owned 0700 sockets directory otherwise); capabilities = moby's
 *   defaults + config.Linux.Capabilities in bounding/permitted/effective, and the config's alone in
 *   inheritable; no noNewPrivileges, rlimits, seccomp or AppArmor profile (moby sets none for
 *   plugins).
 * - mounts: moby's defaults (proc, /dev tmpfs, devpts, sysfs ro, cgroup ro, mqueue, /dev/shm), minus a
 *   default under /dev/ that a config mount replaces; the propagated mount (rbind,rw,rshared, and
 *   rootfsPropagation rshared); each config mount with its effective source (the setting, else the
 *   config's Source; none is an error as in moby); `socketDir` at /run/docker/plugins (rbind,
 *   rshared); and, when Network.Type is not "", the host's /etc/hosts and /etc/resolv.conf read-only.
 * - namespaces: mount, network, uts, pid, ipc, minus network when Network.Type is "host", pid with
 *   PidHost, ipc with IpcHost. moby 28 also asks for a time namespace, which runc 1.1 does not
 *   know; 20.10 does not ask for it either.
 * - devices: each config device whose effective path is set (setting, else config Path), looked up
 *   on the host and allowed rwm in the device cgroup; AllowAllDevices replaces the device rules with
 *   one "allow all rwm". No other cgroup limits.
 *
 * Throws PlugctlError PLUGIN_SPEC_INVALID (stalled) for a mount without a source or a device path
 * that is not a device.
 */
export function buildRuntimeSpec(plugin: RunnablePlugin, options: RuntimeSpecOptions): OciRuntimeSpec {
  const { config, settings } = plugin;
  const lookup = options.lookupDevices ?? lookupDevices;

  const configMounts: OciMount[] = config.Mounts.map((mount) => {
    const source = Object.hasOwn(settings.mounts, mount.Name) ? settings.mounts[mount.Name] : mount.Source;
    if (source === null || source === undefined) {
      throw specError(
        plugin,
        `mount ${JSON.stringify(mount.Name)} (${mount.Destination}) has no source; set one with ` +
          `settings.mounts.${mount.Name || '<name>'} or fix the plugin's config`,
      );
    }
    return {
      destination: mount.Destination,
      type: mount.Type,
      source,
      options: [...mount.Options],
    };
  });
  // moby means to drop the defaults under /dev/ that a plugin mount replaces; its loop removes
  // entries while ranging over them, so it sometimes drops the plugin's mount too. This keeps it.
  const replaced = new Set(configMounts.map((m) => m.destination));
  const mounts = defaultMounts().filter(
    (m) => !(m.destination.startsWith('/dev/') && replaced.has(m.destination)),
  );

  let rootfsPropagation: 'rshared' | undefined;
  if (config.PropagatedMount !== '') {
    mounts.push({
      destination: config.PropagatedMount,
      type: 'bind',
      source: options.propagatedMountSource ?? join(dirname(plugin.rootfs), 'propagated-mount'),
      options: ['rbind', 'rw', 'rshared'],
    });
    rootfsPropagation = 'rshared';
  }
  mounts.push(...configMounts);
  mounts.push({
    destination: PLUGIN_RUNTIME_DESTINATION,
    type: 'bind',
    source: options.socketDir,
    options: ['rbind', 'rshared'],
  });

  const all: OciNamespace[] = [
    { type: 'mount' },
    { type: 'network' },
    { type: 'uts' },
    { type: 'pid' },
    { type: 'ipc' },
  ];
  const namespaces = all.filter(
    (ns) =>
      !(
        (ns.type === 'network' && config.Network.Type === 'host') ||
        (ns.type === 'pid' && config.PidHost) ||
        (ns.type === 'ipc' && config.IpcHost)
      ),
  );
  // moby's TODO: any non-empty type, "bridge" included, gets the host's name resolution files even
  // though only "host" actually shares the host's network.
  if (config.Network.Type !== '') {
    for (const file of ['/etc/hosts', '/etc/resolv.conf']) {
      mounts.push({ destination: file, type: 'bind', source: file, options: ['rbind', 'ro'] });
    }
  }

  let rules = defaultDeviceRules();
  if (config.Linux.AllowAllDevices) rules = [{ allow: true, access: 'rwm' }];
  const devices: OciLinuxDevice[] = [];
  for (const device of config.Linux.Devices) {
    const path = Object.hasOwn(settings.devices, device.Name) ? settings.devices[device.Name] : device.Path;
    if (path === null || path === undefined) continue;
    let found: OciLinuxDevice[];
    try {
      found = lookup(path);
    } catch (error) {
      if (error instanceof PlugctlError) throw error;
      throw specError(plugin, `device ${JSON.stringify(device.Name)}: ${(error as Error).message}`, error);
    }
    for (const d of found) {
      devices.push(d);
      rules.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' });
    }
  }

  const extra = [...new Set(config.Linux.Capabilities)].filter((c) => !DEFAULT_CAPABILITIES.includes(c));
  const withExtra = [...DEFAULT_CAPABILITIES, ...extra];

  const spec: OciRuntimeSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...config.Entrypoint, ...settings.args],
      env: effectiveEnv(plugin),
      cwd: config.WorkDir === '' ? '/' : config.WorkDir,
      capabilities: {
        bounding: [...withExtra],
        effective: [...withExtra],
        permitted: [...withExtra],
        inheritable: [...new Set(config.Linux.Capabilities)],
      },
    },
    root: { path: plugin.rootfs, readonly: false },
    mounts,
    linux: {
      namespaces,
      devices,
      resources: { devices: rules },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  if (rootfsPropagation !== undefined) spec.linux.rootfsPropagation = rootfsPropagation;
  return spec;
}

/** Linux dev_t decoding (glibc's gnu_dev_major/minor), on the 64-bit value Node reports. */
function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function deviceAt(hostPath: string, containerPath: string): OciLinuxDevice | undefined {
  const st = lstatSync(hostPath, { bigint: true });
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (type === undefined) return undefined;
  return {
    path: containerPath,
    type,
    ...majorMinor(st.rdev),
    fileMode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/** The default DeviceLookup: reads the host's device nodes (see DeviceLookup). */
export function lookupDevices(hostPath: string): OciLinuxDevice[] {
  let resolved = hostPath;
  try {
    if (lstatSync(hostPath).isSymbolicLink()) resolved = realpathSync(hostPath);
  } catch (error) {
    throw new Error(`${hostPath} does not exist on this host; fix the device path setting`, { cause: error });
  }
  const single = deviceAt(resolved, hostPath);
  if (single !== undefined) return [single];
  if (!statSync(resolved).isDirectory()) {
    throw new Error(`${hostPath} is not a device node; set the device path to a character or block device`);
  }
  const found: OciLinuxDevice[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isCharacterDevice() || entry.isBlockDevice()) {
        const device = deviceAt(path, hostPath + path.slice(resolved.length));
        if (device !== undefined) found.push(device);
      }
    }
  };
  walk(resolved);
  if (found.length === 0) {
    throw new Error(`${hostPath} is a directory without device nodes; set the device path to a device`);
  }
  return found;
}
