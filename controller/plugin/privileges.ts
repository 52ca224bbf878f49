/**
 * The privileges a plugin requires and the comparison with what an operator grants. plugctl
 * computes them itself, exactly as moby's plugin manager does (plugin/backend_linux.go,
 * computePrivileges), instead of trusting the engine: its answer is `[]` whenever it could not read
 * the registry, and before 29.3.1 it skipped the first element when it validated grants
 * (CVE-2026-33997).
 */
import type { PluginConfig } from './config.ts';

/** One privilege as the Engine API and DockerPlugin documents write it. */
export interface PluginPrivilege {
  name: string;
  description?: string;
  value: string[];
}

/**
 * The privileges moby requires for `config`, in moby's order: network (unless Network.Type is
 * "", "null" or "bridge"), host ipc namespace, host pid namespace, one mount per mount whose
 * Source is set (even to ""), one device per device whose Path is set, allow-all-devices, and
 * capabilities (the list as written, when non-empty). Names, descriptions and values are moby's.
 */
export function computePrivileges(config: PluginConfig): PluginPrivilege[] {
  const privileges: PluginPrivilege[] = [];
  const type = config.Network.Type;
  if (type !== 'null' && type !== 'bridge' && type !== '') {
    privileges.push({ name: 'network', description: 'permissions to access a network', value: [type] });
  }
  if (config.IpcHost) {
    privileges.push({
      name: 'host ipc namespace',
      description: 'allow access to host ipc namespace',
      value: ['true'],
    });
  }
  if (config.PidHost) {
    privileges.push({
      name: 'host pid namespace',
      description: 'allow access to host pid namespace',
      value: ['true'],
    });
  }
  for (const mount of config.Mounts) {
    if (mount.Source !== null) {
      privileges.push({ name: 'mount', description: 'host path to mount', value: [mount.Source] });
    }
  }
  for (const device of config.Linux.Devices) {
    if (device.Path !== null) {
      privileges.push({ name: 'device', description: 'host device to access', value: [device.Path] });
    }
  }
  if (config.Linux.AllowAllDevices) {
    privileges.push({
      name: 'allow-all-devices',
      description: "allow 'rwm' access to all devices",
      value: ['true'],
    });
  }
  if (config.Linux.Capabilities.length > 0) {
    privileges.push({
      name: 'capabilities',
      description: 'list of additional capabilities required',
      value: [...config.Linux.Capabilities],
    });
  }
  return privileges;
}

/** Canonical form of one privilege: name plus its values sorted, description ignored. */
function canonical(privilege: PluginPrivilege): string {
  return JSON.stringify([privilege.name, [...privilege.value].sort()]);
}

/**
 * True when `granted` and `required` hold exactly the same privileges, every element, in any order
 * (values inside one privilege are also compared as a set). Duplicates count.
 */
export function privilegesEqual(
  granted: readonly PluginPrivilege[],
  required: readonly PluginPrivilege[],
): boolean {
  if (granted.length !== required.length) return false;
  const a = granted.map(canonical).sort();
  const b = required.map(canonical).sort();
  return a.every((value, index) => value === b[index]);
}

/** Renders privileges for a message: `network=[host], mount=[/var/lib]`, or `none`. */
export function formatPrivileges(privileges: readonly PluginPrivilege[]): string {
  if (privileges.length === 0) return 'none';
  return privileges.map((p) => `${p.name}=[${p.value.join(', ')}]`).join(', ');
}
