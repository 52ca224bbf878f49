/**
 * Resolving the secret env values of declared plugins before they are planned. Secrets are read on
 * every pass (the file or Secret may change without the document changing), wrapped in SecretValues
 * under the state directory's salt, and only their salted hashes leave this process (status,
 * inventory). A secret that cannot be read blocks only its own plugin.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeSecretSource, SecretValue, type SecretResolver } from '../api/secrets.ts';
import { PlugctlError } from '../errors.ts';
import { tempPathFor } from '../runtime/atomic-file.ts';
import type { DesiredPlugin } from './desired.ts';

/** File name of the salt inside the state directory. */
export const SALT_FILE = 'secret-salt';

/**
 * The state directory's salt (32 random bytes, hex in `<state>/secret-salt`, mode 0600), created on
 * first use. Two processes creating it at once agree: the file appears by link(), which fails when
 * another already made it, and then that one is read.
 */
export async function loadSalt(stateDir: string): Promise<Uint8Array> {
  const path = join(stateDir, SALT_FILE);
  const existing = await readSalt(path);
  if (existing !== undefined) return existing;
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const temp = tempPathFor(path);
  await writeFile(temp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flush: true });
  try {
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(temp, { force: true });
  }
  const salt = await readSalt(path);
  if (salt === undefined) throw new PlugctlError('STATE_UNREADABLE', `${path} vanished while it was created`);
  return salt;
}

async function readSalt(path: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PlugctlError('STATE_UNREADABLE', `cannot read ${path}: ${(error as Error).message}`);
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new PlugctlError(
      'STATE_CORRUPT',
      `${path} is not a plugctl salt (64 hex digits); remove it (secrets are then hashed anew and ` +
        'every plugin with a secret is reconfigured once)',
      { kind: 'stalled' },
    );
  }
  return Buffer.from(hex, 'hex');
}

/** Resolves the secrets of declared plugins; the salt is read once, on first need. */
export class SecretKeeper {
  readonly #stateDir: string;
  readonly #resolver: SecretResolver;
  #salt: Promise<Uint8Array> | undefined;

  /** `resolver` reads the sources (files in file mode, Secrets in Kubernetes mode). */
  constructor(stateDir: string, resolver: SecretResolver) {
    this.#stateDir = stateDir;
    this.#resolver = resolver;
  }

  /**
   * `d` with its secrets in settings.env as SecretValues; a document without secrets is returned as
   * is. A secret that cannot be read sets `secretError` (with its code: SECRET_UNAVAILABLE, or
   * SECRET_SOURCE_UNSUPPORTED), which the planner reports for this plugin alone. Never throws.
   */
  async resolve(d: DesiredPlugin, signal?: AbortSignal): Promise<DesiredPlugin> {
    if (d.secrets === undefined) return d;
    try {
      this.#salt ??= loadSalt(this.#stateDir);
      this.#salt.catch(() => (this.#salt = undefined));
      const salt = await this.#salt;
      const env: Record<string, string | SecretValue> = { ...d.settings.env };
      for (const [name, source] of Object.entries(d.secrets)) {
        try {
          env[name] = new SecretValue(await this.#resolver.resolve(source, signal), salt);
        } catch (error) {
          const code = error instanceof PlugctlError ? error.code : 'SECRET_UNAVAILABLE';
          // The resolver's message names the source; anything else is summarised, never quoted.
          const why =
            error instanceof PlugctlError ? error.message : `cannot read ${describeSecretSource(source)}`;
          return { ...d, secretError: { code, message: `spec.settings.env.${name}: ${why}` } };
        }
      }
      const { secretError: _previous, ...rest } = d;
      return { ...rest, settings: { ...d.settings, env } };
    } catch (error) {
      const code = error instanceof PlugctlError ? error.code : 'SECRET_UNAVAILABLE';
      return {
        ...d,
        secretError: { code, message: `the secrets' salt could not be read: ${(error as Error).message}` },
      };
    }
  }
}

/** env name -> salted hash of each resolved secret of `d`: what status and inventory record. */
export function secretHashes(d: DesiredPlugin | undefined): Record<string, string> | undefined {
  if (d?.secrets === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const name of Object.keys(d.secrets).sort()) {
    const value = d.settings.env?.[name];
    if (value instanceof SecretValue) out[name] = value.hash;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
