/**
 * Secret-valued settings. A secret's plain text lives only inside a SecretValue: every way a value
 * can become text by accident (template strings, String(), JSON.stringify, util.inspect, pino) gives
 * its label, such as `TOKEN=<secret>`, and only reveal() gives the plain text, which plugctl calls
 * in exactly one place: right before handing settings to the store. What plugctl records (status,
 * inventory) is the salted hash, so a changed secret is noticed without keeping it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import type { SecretSource } from './types.ts';

/** How a secret is shown wherever a value would be. */
export const SECRET_MASK = '<secret>';

/**
 * A secret value (or a text derived from one, such as `TOKEN=value` for the engine). Its salted
 * hash, `hmac-sha256:<hex>`, is what may be recorded; the salt belongs to the state directory.
 */
export class SecretValue {
  readonly #plain: string;
  readonly #salt: Uint8Array;
  readonly #label: string;
  /** `hmac-sha256:<hex>` of the plain text under the state directory's salt */
  readonly hash: string;

  /** `label` is what the value shows instead of itself; it must not contain the value. */
  constructor(plain: string, salt: Uint8Array, label: string = SECRET_MASK) {
    this.#plain = plain;
    this.#salt = salt;
    this.#label = label;
    this.hash = saltedHash(salt, plain);
  }

  /** The plain text. Call it only to hand the value to the store. */
  reveal(): string {
    return this.#plain;
  }

  /** True when `plain` (e.g. what the store reports installed) is this secret, compared by hash. */
  matches(plain: string): boolean {
    const a = Buffer.from(this.hash);
    const b = Buffer.from(saltedHash(this.#salt, plain));
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** A value derived from this one (`NAME=<value>`), shown as `label`. */
  derive(make: (plain: string) => string, label: string): SecretValue {
    return new SecretValue(make(this.#plain), this.#salt, label);
  }

  toString(): string {
    return this.#label;
  }

  toJSON(): string {
    return this.#label;
  }

  [inspect.custom](): string {
    return this.#label;
  }
}

/** `hmac-sha256:<hex>` of `plain` under `salt`: the only form of a secret plugctl writes down. */
export function saltedHash(salt: Uint8Array, plain: string): string {
  return `hmac-sha256:${createHmac('sha256', salt).update(plain, 'utf8').digest('hex')}`;
}

/** The plain text of a setting in the engine's syntax, whether it is secret or not. */
export function revealSetting(setting: string | SecretValue): string {
  return typeof setting === 'string' ? setting : setting.reveal();
}

/**
 * Where secrets are read from. File mode reads files on the host; the Kubernetes agent implements it
 * over the Secrets of its own namespace. Implementations never put the value in an error message:
 * failures are PlugctlErrors with code SECRET_UNAVAILABLE (or SECRET_SOURCE_UNSUPPORTED when this
 * mode cannot read that kind of source) naming the source, never its content.
 */
export interface SecretResolver {
  /** The secret's plain text. */
  resolve(source: SecretSource, signal?: AbortSignal): Promise<string>;
}

/** How a source is named in messages: `file /etc/x` or `secret s/key`; never the value. */
export function describeSecretSource(source: SecretSource): string {
  return source.file !== undefined
    ? `file ${source.file}`
    : `Secret ${source.secretKeyRef.name} key ${source.secretKeyRef.key}`;
}
