/**
 * The contract between the embedded store and whatever runs plugin processes (runc in production).
 * The store decides what runs; the runtime only starts, stops and watches processes.
 */
import type { PluginConfig } from '../../plugin/config.ts';
import type { EffectiveSettings } from '../store.ts';

/** Everything needed to run one plugin. */
export interface RunnablePlugin {
  /** 64-hex plugin ID; also the runtime's container ID */
  id: string;
  /** local name, e.g. `vol:latest`; used for the discovery symlink `<name>.sock` */
  name: string;
  /** absolute path of the unpacked root filesystem */
  rootfs: string;
  /** the plugin's config.json (entrypoint, env, mounts, devices, network, capabilities, ...) */
  config: PluginConfig;
  /** effective settings: they override the config's env, args, mount sources and device paths */
  settings: EffectiveSettings;
  /** directory for the runtime's own files for this plugin (bundle, pid file, log) */
  stateDir: string;
}

/** A plugin process that stopped without being asked to. */
export interface RuntimeExit {
  id: string;
  /** the last lines the plugin wrote to stderr/stdout */
  lastOutput: string[];
}

/** Starts and stops plugin processes. */
export interface PluginRuntime {
  /**
   * Starts the plugin and resolves once its socket (config.Interface.Socket, under the
   * per-plugin sockets directory) accepts connections. Rejects within `timeoutMs` when the process
   * exits or never opens the socket, with its last output lines in the error; nothing keeps running.
   */
  start(plugin: RunnablePlugin, timeoutMs: number): Promise<void>;
  /** Stops it: SIGTERM, then SIGKILL after `graceMs`. Stopping a plugin that is not running succeeds. */
  stop(id: string, graceMs: number): Promise<void>;
  /** True when the plugin's process is running (found again after a controller restart). */
  isRunning(id: string): Promise<boolean>;
  /** Called when a running plugin exits on its own; the store decides whether to restart it. */
  onExit(listener: (exit: RuntimeExit) => void): void;
  /** The host path of a plugin's sockets directory (mounted at /run/docker/plugins inside). */
  socketDir(id: string): string;
  /** Stops watching (does not stop plugins: they outlive the controller, as under dockerd). */
  close(): Promise<void>;
}
