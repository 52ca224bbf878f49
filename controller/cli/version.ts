/**
 * `plugctl version [-o text|json|yaml]`: plugctl's version (from its package.json) and the Node.js
 * it runs on, and, when the Docker store is in use and the engine answers, the engine's version, its
 * API version and the known engine defects that matter to plugins (moby#47299 before 25.0.4,
 * CVE-2026-33997 before 29.3.1). Exit 1 when the engine the docker store would use does not answer,
 * as `docker version` does; the client part is printed all the same.
 */
import { stringify } from 'yaml';
import { describeError, PlugctlError } from '../errors.ts';
import type { EngineHazard } from '../store/docker/engine-version.ts';
import type { CommandContext } from './context.ts';
import { chooseStore } from './open-store.ts';
import { packageVersion } from './package-version.ts';

/** How long `version` waits for the engine's ping and version. */
const ENGINE_TIMEOUT_MS = 5000;

/** Options of `version`. */
export interface VersionOptions {
  output: 'text' | 'json' | 'yaml';
}

/** The engine as `version` reports it. */
export type EngineReport =
  | {
      address: string;
      reachable: true;
      version: string;
      /** the highest API version the daemon speaks */
      apiVersion: string;
      /** the API version plugctl addresses it at (the lower of the daemon's and plugctl's) */
      negotiatedApiVersion: string;
      hazards: EngineHazard[];
    }
  | { address: string; reachable: false; error: { code: string; message: string } };

/** What `version -o json` prints. */
export interface VersionReport {
  plugctl: { version: string; node: string };
  store: 'docker' | 'embedded';
  /** present for the docker store */
  engine?: EngineReport;
}

/** Prints the versions; returns 0, or 1 when the docker store's engine does not answer. */
export async function versionCommand(
  options: VersionOptions,
  ctx: CommandContext,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const report = await versionReport(ctx, env);
  if (options.output === 'json') ctx.io.out(`${JSON.stringify(report, null, 2)}\n`);
  else if (options.output === 'yaml') ctx.io.out(stringify(report));
  else ctx.io.out(renderVersion(report, ctx.options.root));
  return report.engine?.reachable === false ? 1 : 0;
}

/** Gathers the report: the engine is asked only when the docker store would be used. */
export async function versionReport(ctx: CommandContext, env: NodeJS.ProcessEnv): Promise<VersionReport> {
  const plugctl = { version: packageVersion(), node: process.versions.node };
  const store = chooseStore(ctx.options.store, ctx.options.dockerHost, env);
  if (store === 'embedded') return { plugctl, store };
  return { plugctl, store, engine: await engineReport(ctx.options.dockerHost, env) };
}

async function engineReport(host: string | undefined, env: NodeJS.ProcessEnv): Promise<EngineReport> {
  const [{ connectEngine, parseDockerHost, DEFAULT_DOCKER_HOST }, { engineHazards }] = await Promise.all([
    import('../store/docker/client.ts'),
    import('../store/docker/engine-version.ts'),
  ]);
  const fromEnv = env['DOCKER_HOST'];
  const address = host ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_DOCKER_HOST);
  try {
    parseDockerHost(address);
    const engine = await connectEngine({
      host: address,
      env,
      connectTimeoutMs: ENGINE_TIMEOUT_MS,
      connections: 1,
    });
    try {
      return {
        address,
        reachable: true,
        version: engine.engineVersion,
        apiVersion: engine.daemonApiVersion,
        negotiatedApiVersion: engine.apiVersion,
        hazards: engineHazards(engine.engineVersion),
      };
    } finally {
      await engine.close();
    }
  } catch (error) {
    const code = error instanceof PlugctlError ? error.code : 'ENGINE_UNREACHABLE';
    return {
      address,
      reachable: false,
      error: { code, message: error instanceof PlugctlError ? error.message : describeError(error) },
    };
  }
}

/** The text form, in `docker version`'s spirit: one `Name: value` line per fact. */
export function renderVersion(report: VersionReport, root: string): string {
  const lines = [`plugctl:      ${report.plugctl.version}`, `Node.js:      ${report.plugctl.node}`];
  const engine = report.engine;
  if (engine === undefined) {
    lines.push(`Store:        embedded (${root}); no Docker engine is used`);
  } else if (!engine.reachable) {
    lines.push(`Store:        docker (${engine.address})`);
    lines.push(`Engine:       not reachable: ${engine.error.message} [${engine.error.code}]`);
  } else {
    lines.push(`Store:        docker (${engine.address})`);
    lines.push(`Engine:       ${engine.version}`);
    lines.push(`API version:  ${engine.apiVersion} (plugctl uses ${engine.negotiatedApiVersion})`);
    if (engine.hazards.length === 0) lines.push('Hazards:      none known');
    else {
      lines.push('Hazards:');
      for (const h of engine.hazards) lines.push(`  - ${h.id} (fixed in ${h.fixedIn}): ${h.summary}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
